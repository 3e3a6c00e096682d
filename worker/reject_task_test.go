package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/omicsomics/omics-worker/worker/workertest"
)

// TestRejectSendsTaskRejected: a handler's Reject rejects the message
// (dropped, or requeued), stores nothing and announces task-rejected
// {requeue} — celery's Request.reject — instead of task-failed.
func TestRejectSendsTaskRejected(t *testing.T) {
	reg := NewRegistry()
	calls := 0
	mustRegister(t, reg, "t.rej", func(_ context.Context, tk *Task) (any, error) {
		calls++
		if calls == 1 {
			return nil, Reject(errors.New("not now"), true)
		}
		return nil, Reject(nil, false)
	}, TaskOptions{IgnoreResult: true})
	h := start(t, Config{Concurrency: 1}, reg)
	rec := &rejectRecorder{reasons: map[string]int{}}
	h.w.AddObserver(rec)
	m := h.send(t, "t.rej", nil, nil)
	workertest.WaitUntil(t, "two rejects", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := 0
		for _, ev := range rec.events {
			if ev.Type == EventTaskRejected {
				n++
			}
		}
		return n == 2
	})
	rec.mu.Lock()
	var types []string
	var requeues []bool
	for _, ev := range rec.events {
		types = append(types, ev.Type)
		if ev.Type == EventTaskRejected {
			requeues = append(requeues, ev.Requeue)
			if ev.ID != m.ID {
				t.Errorf("event id %s", ev.ID)
			}
		}
	}
	rec.mu.Unlock()
	want := []string{EventTaskReceived, EventTaskStarted, EventTaskRejected, EventTaskReceived, EventTaskStarted, EventTaskRejected}
	if len(types) != len(want) || len(requeues) != 2 || !requeues[0] || requeues[1] {
		t.Fatalf("events %v requeues %v, want %v [true false]", types, requeues, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	if s := h.backend.States(m.ID); len(s) != 0 {
		t.Errorf("stored %v, want nothing", s)
	}
	workertest.WaitUntil(t, "acked", func() bool { u, _, _, _ := h.broker.Snapshot(); return u == 0 })
}
