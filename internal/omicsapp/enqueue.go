package omicsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

// Publisher sends an encoded kombu envelope to a queue
// (redistransport.Broker does).
type Publisher interface {
	Publish(ctx context.Context, queue string, priority int, envelope []byte) error
}

// EnqueueAndWatch is the fallback producer of demo-seed --enqueue: it
// publishes a task for each file of p (Enqueue), polls the result backend
// (Watch) and writes the status endpoint's final responses to stdout as
// JSON, the progress lines to stderr.
func EnqueueAndWatch(ctx context.Context, pub Publisher, src ResultSource, p Plan, queue string,
	timeout time.Duration, stdout, stderr io.Writer) error {
	ids, err := Enqueue(ctx, pub, p, queue)
	if err != nil {
		return err
	}
	return Watch(ctx, src, p, ids, timeout, stdout, stderr)
}

// Enqueue publishes process_file_async(raw_file_id=..., sample_id=None)
// for each file of p to queue, as delay() would, and returns the task
// ids in plan order.
func Enqueue(ctx context.Context, pub Publisher, p Plan, queue string) ([]string, error) {
	ids := make([]string, len(p.Files))
	for i, f := range p.Files {
		ids[i] = pyfmt.NewUUID4().String()
		msg := &protocol.TaskMessage{ID: ids[i], Task: tasks.ProcessFileTask,
			Kwargs: map[string]any{"raw_file_id": f.RawFileID, "sample_id": nil}}
		env, err := protocol.EncodeTask(msg, protocol.PublishOptions{Queue: queue})
		if err != nil {
			return nil, err
		}
		if err := pub.Publish(ctx, queue, 0, env); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// Watch polls the status of ids (the tasks of p's files, in order) until
// each is SUCCESS or FAILURE or timeout passes, printing a line to stderr
// whenever a task's status changes; it then writes
// {"tasks": [{"name", "task_id", "final"}, ...]} to stdout, "final" null
// for a task that did not end in time.
func Watch(ctx context.Context, src ResultSource, p Plan, ids []string, timeout time.Duration, stdout, stderr io.Writer) error {
	last := make([]string, len(ids))
	final := make([]*StatusResponse, len(ids))
	deadline := time.Now().Add(timeout)
	for done := 0; done < len(ids) && time.Now().Before(deadline); {
		for i, id := range ids {
			if final[i] != nil {
				continue
			}
			resp, err := Status(ctx, src, id)
			if err != nil {
				return err
			}
			errText := ""
			if resp.Error != nil {
				errText = *resp.Error
			}
			line := fmt.Sprintf("  %-28s %-8s %3v%%  %v %s", p.Files[i].Name, resp.State, orEmpty(resp.Progress), resp.Status, errText)
			if line != last[i] {
				fmt.Fprintln(stderr, line)
				last[i] = line
			}
			if s := resp.State; s == "SUCCESS" || s == "FAILURE" {
				final[i] = resp
				done++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := make([]map[string]any, len(ids))
	for i := range ids {
		out[i] = map[string]any{"name": p.Files[i].Name, "task_id": ids[i], "final": final[i]}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", " ")
	return enc.Encode(map[string]any{"tasks": out})
}

func orEmpty(v any) any {
	if v == nil {
		return ""
	}
	return v
}
