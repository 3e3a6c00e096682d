package events

// The Celery fields of task events (spec §5): what the runtime reports in
// a worker.TaskEvent, formatted the way a Python worker sends it (reprs of
// arguments, results and exceptions, ISO times, None for absent ids).

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// TaskFields are the Celery fields of ev (uuid included, "type" not),
// nil for an event type this worker does not send.
func TaskFields(ev worker.TaskEvent) map[string]any {
	var f map[string]any
	switch ev.Type {
	case worker.EventTaskReceived:
		f = receivedFields(ev)
	case worker.EventTaskStarted:
		f = map[string]any{}
	case worker.EventTaskSucceeded:
		f = map[string]any{"result": resultRepr(ev), "runtime": protocol.Float(ev.Runtime.Seconds())}
	case worker.EventTaskFailed, worker.EventTaskRetried:
		f = failedFields(ev)
	case worker.EventTaskRevoked:
		var signum any
		if ev.Terminated {
			signum = ev.Signum
		}
		f = map[string]any{"terminated": ev.Terminated, "signum": signum, "expired": ev.Expired}
	case worker.EventTaskRejected:
		f = map[string]any{"requeue": ev.Requeue}
	default:
		return nil
	}
	f["uuid"] = ev.ID
	return f
}

func receivedFields(ev worker.TaskEvent) map[string]any {
	msg := ev.Message
	if msg == nil {
		return map[string]any{"name": ev.Name}
	}
	return map[string]any{
		"name":      ev.Name,
		"args":      msg.ArgsRepr,
		"kwargs":    msg.KwargsRepr,
		"root_id":   nilIfEmpty(msg.RootID),
		"parent_id": nilIfEmpty(msg.ParentID),
		"retries":   msg.Retries,
		"eta":       isoOrNil(msg.ETA),
		"expires":   isoOrNil(msg.Expires),
	}
}

// failedFields: task-retried always has a traceback, task-failed only for
// a task that ran (not for NotRegistered and other rejections).
func failedFields(ev worker.TaskEvent) map[string]any {
	exc := ""
	if info, ok := ev.Exception(); ok {
		exc = protocol.PyReprException(info)
	}
	if ev.Type == worker.EventTaskFailed && !ev.Ran {
		return map[string]any{"exception": exc}
	}
	return map[string]any{"exception": exc, "traceback": ev.Traceback()}
}

// resultRepr is the Python repr of a task-succeeded's result: the stored
// JSON when there is a stored meta (protocol.SafeRepr decodes a
// json.RawMessage itself), else the handler's value as it would have been
// stored.
func resultRepr(ev worker.TaskEvent) string {
	if ev.Meta != nil {
		return protocol.SafeRepr(ev.Meta.Result, 0)
	}
	raw, err := json.Marshal(ev.Result)
	if err != nil {
		return protocol.SafeRepr(fmt.Sprint(ev.Result), 0)
	}
	return protocol.SafeRepr(json.RawMessage(raw), 0)
}

func isoOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return pyfmt.FormatISO(t.UTC())
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
