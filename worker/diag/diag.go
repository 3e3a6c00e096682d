// Package diag provides diagnostic Celery tasks for tests, benchmarks and
// operators: diag.noop, diag.progress, diag.echo, diag.fail, diag.sleep,
// diag.flaky, and diag.add, diag.mul, diag.xsum for canvas tests. They
// are registered only on request (omics-worker worker --diagnostic-tasks). testdata/interop/diag_tasks.py holds the equivalent
// Python tasks.
package diag

import (
	"context"
	"fmt"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

// Names of the diagnostic tasks.
const (
	Noop     = "diag.noop"
	Progress = "diag.progress"
	Echo     = "diag.echo"
	Fail     = "diag.fail"
	Sleep    = "diag.sleep"
	Flaky    = "diag.flaky"
	// Transient fails with a transient ConnectionError that the runtime
	// retries automatically (worker.Transient; backoff 1 s × 2^n, full
	// jitter, max 3 retries).
	Transient = "diag.transient"
)

// Register adds every diagnostic task to reg.
func Register(reg *worker.Registry) error {
	tasks := []struct {
		name string
		h    worker.Handler
		opts worker.TaskOptions
	}{
		{Noop, noop, worker.TaskOptions{Params: []string{}}},
		{Progress, progress, worker.TaskOptions{Params: []string{"steps", "delay"}}},
		{Echo, echo, worker.TaskOptions{Params: []string{}, VarArgs: true, VarKwargs: true}},
		{Fail, fail, worker.TaskOptions{Params: []string{"message"}}},
		{Sleep, sleep, worker.TaskOptions{Params: []string{"seconds"}}},
		{Flaky, flaky, worker.TaskOptions{Params: []string{"fail_times", "key", "countdown", "max_retries"}, MaxRetries: -1}},
		{Transient, transient, worker.TaskOptions{Params: []string{"fail_times", "key"}}},
	}
	for _, t := range tasks {
		if err := reg.Register(t.name, t.h, t.opts); err != nil {
			return fmt.Errorf("diag: %w", err)
		}
	}
	return registerCanvas(reg) // canvas.go
}

// noop() -> {"ok": true}
func noop(context.Context, *worker.Task) (any, error) {
	return map[string]any{"ok": true}, nil
}

// progress(steps=5, delay=0) writes steps PROGRESS states
// {"status": "step i", "progress": p} (p in percent), sleeping delay
// seconds between them, then returns {"ok": true, "steps": steps}.
func progress(ctx context.Context, t *worker.Task) (any, error) {
	steps, err := t.IntArgOr("steps", 5)
	if err != nil {
		return nil, err
	}
	if steps < 0 || steps > 1_000_000 {
		return nil, worker.PyErrorf("ValueError", "steps must be between 0 and 1000000, not %d", steps)
	}
	delay, err := t.FloatArgOr("delay", 0)
	if err != nil {
		return nil, err
	}
	for i := int64(1); i <= steps; i++ {
		if delay > 0 {
			if err := pause(ctx, delay); err != nil {
				return nil, err
			}
		} else if err := ctx.Err(); err != nil {
			return nil, err
		}
		meta := map[string]any{"status": fmt.Sprintf("step %d", i), "progress": i * 100 / steps}
		if err := t.UpdateState(ctx, "PROGRESS", meta); err != nil {
			return nil, err
		}
	}
	return map[string]any{"ok": true, "steps": steps}, nil
}

// echo(*args, **kwargs) -> {"args": [...], "kwargs": {...}}
func echo(_ context.Context, t *worker.Task) (any, error) {
	return map[string]any{"args": t.Args, "kwargs": t.Kwargs}, nil
}

// fail(message="diag.fail") raises ValueError(message).
func fail(_ context.Context, t *worker.Task) (any, error) {
	msg, err := t.StringArgOr("message", "diag.fail")
	if err != nil {
		return nil, err
	}
	return nil, worker.NewPyError("ValueError", msg)
}

// sleep(seconds=1) sleeps cooperatively; returns {"ok": true, "slept": s},
// or the cancellation (soft time limit, shutdown) as an error.
func sleep(ctx context.Context, t *worker.Task) (any, error) {
	s, err := t.FloatArgOr("seconds", 1)
	if err != nil {
		return nil, err
	}
	if err := pause(ctx, s); err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "slept": s}, nil
}

// flaky(fail_times=1, key="", countdown=0.2) fails with a retry until it
// has been retried fail_times times, then returns {"ok": true, "key": key,
// "retries": n}. It counts with the message's retries header, so it works
// across workers.
func flaky(_ context.Context, t *worker.Task) (any, error) {
	n, err := t.IntArgOr("fail_times", 1)
	if err != nil {
		return nil, err
	}
	key, err := t.StringArgOr("key", "")
	if err != nil {
		return nil, err
	}
	cd, err := t.FloatArgOr("countdown", 0.2)
	if err != nil {
		return nil, err
	}
	// max_retries=None: the task's (unlimited); else Task.retry(max_retries=n).
	maxR, err := t.IntArgOr("max_retries", -1)
	if err != nil {
		return nil, err
	}
	if int64(t.Retries) < n {
		cause := worker.PyErrorf("ConnectionError", "flaky failure %d of %d", t.Retries+1, n)
		r := worker.Retry(cause, max(time.Duration(cd*float64(time.Second)), time.Millisecond))
		if maxR >= 0 {
			m := int(maxR)
			r.MaxRetries = &m
		}
		return nil, r
	}
	return map[string]any{"ok": true, "key": key, "retries": t.Retries}, nil
}

// transient(fail_times=1, key="") fails with a transient
// ConnectionError("transient failure i of n") until it has been retried
// fail_times times (the runtime retries it automatically, at most 3 times),
// then returns {"ok": true, "key": key, "retries": n}.
func transient(_ context.Context, t *worker.Task) (any, error) {
	n, err := t.IntArgOr("fail_times", 1)
	if err != nil {
		return nil, err
	}
	key, err := t.StringArgOr("key", "")
	if err != nil {
		return nil, err
	}
	if int64(t.Retries) < n {
		return nil, worker.Transient(worker.PyErrorf("ConnectionError", "transient failure %d of %d", t.Retries+1, n))
	}
	return map[string]any{"ok": true, "key": key, "retries": t.Retries}, nil
}

func pause(ctx context.Context, seconds float64) error {
	if seconds <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
