package worker

import (
	"context"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// TestTimeLimitPrecedence is Celery's order for one limit: message >
// task attribute > worker flag (negative = none) > app default (issue 9
// #12: the file tasks' app 3600/3300 used to beat --time-limit).
func TestTimeLimitPrecedence(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	const app, flag, task = 3600 * time.Second, 60 * time.Second, 120 * time.Second
	for _, tc := range []struct {
		name                     string
		hdr                      *float64
		task, worker, appDefault time.Duration
		want                     time.Duration
	}{
		{"nothing set", nil, 0, 0, 0, 0},
		{"app default alone", nil, 0, 0, app, app},
		{"flag beats app default", nil, 0, flag, app, flag},
		{"flag above app default still wins", nil, 0, 2 * app, app, 2 * app},
		{"flag 0 (none) beats app default", nil, 0, -1, app, 0},
		{"task attribute beats flag", nil, task, flag, app, task},
		{"message beats everything", f(5), task, flag, app, 5 * time.Second},
		{"message beats flag none", f(5), 0, -1, app, 5 * time.Second},
		{"message 0 is not a limit", f(0), 0, flag, app, flag},
		{"null header is not a limit", nil, 0, 0, app, app},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := limit(tc.hdr, tc.task, tc.worker, tc.appDefault); got != tc.want {
				t.Errorf("limit = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestWorkerTimeLimitBeatsAppDefault runs it: a task whose app sets one
// hour stops at the worker's limit, and at the message's when it has one.
func TestWorkerTimeLimitBeatsAppDefault(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	reg := NewRegistry()
	mustRegister(t, reg, "t.stubborn", func(ctx context.Context, _ *Task) (any, error) {
		<-block // ignores ctx
		return nil, nil
	}, TaskOptions{AppTimeLimit: time.Hour, AppSoftTimeLimit: time.Hour})
	h := start(t, Config{Concurrency: 2, TimeLimit: 150 * time.Millisecond}, reg)
	f64 := func(f float64) *float64 { return &f }

	m := h.send(t, "t.stubborn", nil, nil)
	if f := h.backend.WaitFinal(t, m.ID); workertest.ResultJSON(t, f) != `{"exc_type":"TimeLimitExceeded","exc_message":[0.15],"exc_module":"billiard.exceptions"}` {
		t.Errorf("worker limit: %s", workertest.ResultJSON(t, f))
	}
	m = h.send(t, "t.stubborn", nil, nil, func(m *protocol.TaskMessage) { m.TimeLimit = [2]*float64{f64(0.05), nil} })
	if f := h.backend.WaitFinal(t, m.ID); workertest.ResultJSON(t, f) != `{"exc_type":"TimeLimitExceeded","exc_message":[0.05],"exc_module":"billiard.exceptions"}` {
		t.Errorf("message limit: %s", workertest.ResultJSON(t, f))
	}
}
