package worker

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

type rejectRecorder struct {
	mu      sync.Mutex
	reasons map[string]int
	events  []TaskEvent
}

func (r *rejectRecorder) ObserveReject(reason string) {
	r.mu.Lock()
	r.reasons[reason]++
	r.mu.Unlock()
}

func (r *rejectRecorder) ObserveTask(ev TaskEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *rejectRecorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.reasons {
		n += v
	}
	return n
}

// rawDelivery is what the Redis broker makes of raw bytes.
func rawDelivery(tag string, raw []byte) *protocol.Delivery {
	d := &protocol.Delivery{Queue: "q", Tag: tag, Raw: raw}
	d.Envelope, d.DecodeErr = protocol.DecodeEnvelope(raw)
	return d
}

// withBody returns a delivery of msg whose base64 body is replaced.
func withBody(t *testing.T, msg *protocol.TaskMessage, body []byte) *protocol.Delivery {
	d := workertest.Delivery(t, msg, "q")
	d.Envelope.Body = base64.StdEncoding.EncodeToString(body)
	raw, err := d.Envelope.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rawDelivery(d.Tag, raw)
}

// Issue 9 #9, #10, #11: every message rejected without running is
// reported to RejectObservers with a bounded reason (the metrics'
// tasks_rejected_total stayed empty through 30+ rejects); an envelope or
// body nested too deeply and a body with invalid UTF-8 get a FAILURE
// naming the cause when their id is readable; an unregistered task's
// events carry no registered name (Task "").
func TestRejectsReportedWithReason(t *testing.T) {
	reg := NewRegistry()
	mustRegister(t, reg, "t.ok", func(context.Context, *Task) (any, error) { return nil, nil }, TaskOptions{})
	h := start(t, Config{Concurrency: 1, MaxMessageSize: 64 << 10}, reg)
	rec := &rejectRecorder{reasons: map[string]int{}}
	h.w.AddObserver(rec)

	type want struct {
		id, exc, text string
	}
	var wants []want
	newMsg := func() *protocol.TaskMessage { return protocol.NewTaskMessage("t.ok", nil, nil) }

	// Undecodable envelope, no id: logged, acked, counted.
	h.broker.Put(rawDelivery("u-1", []byte("not json")))
	// Envelope nested 10 001 levels, readable id.
	deep := newMsg()
	d := workertest.Delivery(t, deep, "q")
	raw := bytes.Replace(d.Raw, []byte(`{"body": `), []byte(`{"x": `+strings.Repeat("[", 10_001)+strings.Repeat("]", 10_001)+`, "body": `), 1)
	dd := rawDelivery("", raw) // cjson could not record it: no tag
	if dd.Envelope != nil {
		t.Fatal("deep envelope decoded")
	}
	h.broker.Put(dd)
	wants = append(wants, want{deep.ID, "InvalidTaskError", "message nested too deeply (limit 1000)"})
	// Body nested too deeply.
	deepBody := newMsg()
	h.broker.Put(withBody(t, deepBody, []byte(`[`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)+`, {}, {}]`)))
	wants = append(wants, want{deepBody.ID, "InvalidTaskError", "message nested too deeply (limit 1000): body"})
	// Body with invalid UTF-8 inside a string.
	badUTF8 := newMsg()
	h.broker.Put(withBody(t, badUTF8, []byte("[[\"caf\xe9\"], {}, {}]")))
	wants = append(wants, want{badUTF8.ID, "InvalidTaskError", "invalid UTF-8 at byte 6 (0xe9)"})
	// Refused serializer, invalid field, too large, unregistered.
	pickle := newMsg()
	d = workertest.Delivery(t, pickle, "q")
	d.Envelope.ContentType = "application/x-python-serialize"
	h.broker.Put(d)
	wants = append(wants, want{pickle.ID, "ContentDisallowed", "pickle"})
	bad := newMsg()
	bad.Headers = nil
	d = workertest.Delivery(t, bad, "q")
	d.Envelope.Headers["eta"] = []byte(`"yesterday"`)
	h.broker.Put(d)
	wants = append(wants, want{bad.ID, "InvalidTaskError", "eta"})
	big := protocol.NewTaskMessage("t.ok", []any{strings.Repeat("x", 70<<10)}, nil)
	h.broker.Put(workertest.Delivery(t, big, "q"))
	wants = append(wants, want{big.ID, "InvalidTaskError", "exceeds the worker's limit"})
	var unreg []string
	for i := range 30 {
		m := protocol.NewTaskMessage(fmt.Sprintf("nope.%d.%s", i, strings.Repeat("n", 1000)), nil, nil)
		h.broker.Put(workertest.Delivery(t, m, "q"))
		unreg = append(unreg, m.ID)
	}
	// Not a task message at all.
	unknown := newMsg()
	d = workertest.Delivery(t, unknown, "q")
	delete(d.Envelope.Headers, "task")
	d.Envelope.Body = base64.StdEncoding.EncodeToString([]byte(`[[], {}, {}]`))
	h.broker.Put(d)

	for _, w := range wants {
		f := h.backend.WaitFinal(t, w.id)
		info, ok := f.Result.(*protocol.ExceptionInfo)
		if !ok || f.Status != protocol.StateFailure || info.Type != w.exc || !strings.Contains(fmt.Sprint(info.Message...), w.text) {
			t.Errorf("%s: %s %+v; want %s containing %q", w.id, f.Status, f.Result, w.exc, w.text)
		}
	}
	for _, id := range unreg {
		h.backend.WaitFinal(t, id)
	}
	workertest.WaitUntil(t, "all rejects reported", func() bool { return rec.total() >= 38 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	wantReasons := map[string]int{
		RejectUndecodable: 2, RejectTooDeep: 2, RejectContentDisallowed: 1, RejectInvalid: 1,
		RejectTooLarge: 1, RejectUnregistered: 30, RejectUnknown: 1,
	}
	for r, n := range wantReasons {
		if rec.reasons[r] != n {
			t.Errorf("reason %s: %d, want %d (all: %v)", r, rec.reasons[r], n, rec.reasons)
		}
	}
	failed := 0
	for _, ev := range rec.events {
		if ev.Type == EventTaskFailed && strings.HasPrefix(ev.Name, "nope.") {
			failed++
			if ev.Task != "" {
				t.Errorf("unregistered task event has Task %q", ev.Task)
			}
		}
	}
	if failed != 30 {
		t.Errorf("%d task-failed events of unregistered tasks, want 30", failed)
	}
}
