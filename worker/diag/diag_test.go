package diag

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

// Handlers are exercised end to end by cmd/omics-worker's interop tests
// (real Redis, real Python Celery); these check their local logic.
func TestHandlers(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		h       worker.Handler
		ctx     context.Context
		task    *worker.Task
		want    string
		errType string
	}{
		{"noop", noop, nil, &worker.Task{}, `{"ok":true}`, ""},
		{"echo", echo, nil, &worker.Task{Args: []any{json.Number("1"), "a"}, Kwargs: map[string]any{"k": nil}},
			`{"args":[1,"a"],"kwargs":{"k":null}}`, ""},
		{"fail", fail, nil, &worker.Task{Kwargs: map[string]any{"message": "boom"}}, "", "ValueError"},
		{"sleep 0", sleep, nil, &worker.Task{Kwargs: map[string]any{"seconds": json.Number("0")}}, `{"ok":true,"slept":0}`, ""},
		{"sleep cancelled", sleep, cancelled, &worker.Task{Kwargs: map[string]any{"seconds": json.Number("60")}}, "", "context"},
		{"sleep bad arg", sleep, nil, &worker.Task{Kwargs: map[string]any{"seconds": "x"}}, "", "TypeError"},
		{"progress bad arg", progress, nil, &worker.Task{Kwargs: map[string]any{"steps": "abc"}}, "", "TypeError"},
		{"progress negative", progress, nil, &worker.Task{Kwargs: map[string]any{"steps": json.Number("-1")}}, "", "ValueError"},
		{"flaky retries", flaky, nil, &worker.Task{Kwargs: map[string]any{"fail_times": json.Number("2")}, Retries: 1}, "", "retry"},
		{"transient fails", transient, nil, &worker.Task{Kwargs: map[string]any{"fail_times": json.Number("1")}}, "", "ConnectionError"},
		{"transient done", transient, nil, &worker.Task{Kwargs: map[string]any{"fail_times": json.Number("1"), "key": "k"}, Retries: 1},
			`{"key":"k","ok":true,"retries":1}`, ""},
		{"flaky done", flaky, nil, &worker.Task{Kwargs: map[string]any{"fail_times": json.Number("2"), "key": "k"}, Retries: 2},
			`{"key":"k","ok":true,"retries":2}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			res, err := tc.h(ctx, tc.task)
			switch tc.errType {
			case "":
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(res)
				if string(b) != tc.want {
					t.Fatalf("got %s, want %s", b, tc.want)
				}
			case "context":
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err %v", err)
				}
			case "retry":
				var r *worker.RetryError
				if !errors.As(err, &r) || r.Countdown != 200*time.Millisecond {
					t.Fatalf("err %v", err)
				}
			default:
				var pe *worker.PyError
				if !errors.As(err, &pe) || pe.Type != tc.errType {
					t.Fatalf("err %v, want %s", err, tc.errType)
				}
			}
		})
	}
}

func TestRegister(t *testing.T) {
	reg := worker.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if got := len(reg.Names()); got != 10 { // 7 + add, mul, xsum
		t.Fatalf("%d tasks", got)
	}
	if err := Register(reg); !errors.Is(err, worker.ErrDuplicateTask) {
		t.Fatalf("second Register: %v", err)
	}
}
