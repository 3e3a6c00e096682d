package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/protocol"
)

// outcome is what a handler goroutine reports.
type outcome struct {
	result   any
	err      error
	panicked bool
	frames   []string // Go stack of a panic
}

// execute runs one reserved job on the calling pool goroutine.
func (w *Worker) execute(j *job) {
	ctx := context.Background()
	msg, def := j.msg, j.def
	if w.expired(ctx, j) {
		return
	}
	if w.hookStart(ctx, j) { // revoked while reserved
		return
	}
	t := &Task{
		ID:           msg.ID,
		Name:         msg.Task,
		Args:         msg.Args,
		Kwargs:       msg.Kwargs,
		Retries:      msg.Retries,
		Hostname:     w.cfg.Hostname,
		RootID:       msg.RootID,
		ParentID:     msg.ParentID,
		GroupID:      msg.Group,
		ETA:          msg.ETA,
		Expires:      msg.Expires,
		Queue:        j.d.Queue,
		DeliveryInfo: j.d.Envelope.Properties.DeliveryInfo,
		Headers:      msg.Headers,
		Message:      msg,
		def:          def,
		w:            w,
	}
	if t.Args == nil {
		t.Args = []any{}
	}
	if t.Kwargs == nil {
		t.Kwargs = map[string]any{}
	}

	trackStarted := !w.cfg.DisableTrackStarted && !def.opts.DisableTrackStarted && !def.opts.IgnoreResult
	var started *protocol.ResultMeta
	if trackStarted {
		started = w.meta(t, protocol.StateStarted, map[string]any{"pid": w.cfg.Pid, "hostname": w.cfg.Hostname})
	}
	if w.cfg.AcksEarly {
		// Early ack at start; with STARTED to write, both go in one round
		// trip when the backend can do it.
		var err error
		if started != nil && w.storeAcker != nil {
			err = w.storeAcker.StoreAndAck(ctx, started, j.d)
			started = nil
		} else {
			err = w.broker.Ack(ctx, j.d)
		}
		if err != nil {
			j.log.Error("early ack failed", "err", err)
		}
		w.mu.Lock()
		j.acked = true
		w.releaseLocked(j)
		delete(w.held, j)
		w.mu.Unlock()
	}
	if started != nil {
		if err := w.storeNoWait(ctx, started); err != nil {
			j.log.Warn("storing STARTED failed", "err", err)
		}
	}

	hard, soft := w.limits(msg, def)
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.mu.Lock()
	j.cancel = cancel
	w.mu.Unlock()
	w.hookCancelSet(j)

	if err := t.checkSignature(); err != nil {
		w.finish(ctx, j, t, tctx, outcome{err: err}, time.Now())
		return
	}

	begin := time.Now()
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		defer func() {
			if r := recover(); r != nil {
				o = outcome{err: fmt.Errorf("panic: %v", r), panicked: true, frames: goFrames(3)}
			}
			done <- o
		}()
		o.result, o.err = def.handler(tctx, t)
	}()

	if soft > 0 {
		st := time.AfterFunc(soft, func() {
			j.log.Warn(fmt.Sprintf("Soft time limit (%gs) exceeded for %s[%s]", soft.Seconds(), msg.Task, msg.ID))
			cancel(ErrSoftTimeLimitExceeded)
		})
		defer st.Stop()
	}
	var hardC <-chan time.Time
	if hard > 0 {
		var stop func() bool
		hardC, stop = w.newHardTimer(hard)
		defer stop()
	}

	select {
	case o := <-done:
		w.finish(ctx, j, t, tctx, o, begin)
	case <-hardC:
		if !t.gate.limit() {
			// The task committed its effect (Task.Commit) before the
			// limit could stop it: its own outcome is the result.
			j.log.Warn(fmt.Sprintf("Hard time limit (%gs) reached after %s[%s] committed; waiting for its result", hard.Seconds(), msg.Task, msg.ID))
			select {
			case o := <-done:
				w.finish(ctx, j, t, tctx, o, begin)
			case <-w.abandon:
				t.finished.Store(true)
				w.abandonJob(ctx, j, t)
			}
			return
		}
		t.finished.Store(true)
		cancel(ErrHardTimeLimit)
		j.log.Error(fmt.Sprintf("Hard time limit (%gs) exceeded for %s[%s]", hard.Seconds(), msg.Task, msg.ID))
		var m *protocol.ResultMeta
		exc := timeLimitError(msg, hard).Info() // timelimit.go
		if !w.ignoreResult(j) {                 // spec §3.7: main-process records
			m = w.meta(t, protocol.StateFailure, exc)
		}
		w.settleFinal(ctx, j, m)
		w.canvasFailed(ctx, j, exc, nil) // canvas.go
	case <-w.abandon:
		t.finished.Store(true)
		w.abandonJob(ctx, j, t)
	}
}

// limits returns the effective hard and soft limits (see limit).
func (w *Worker) limits(msg *protocol.TaskMessage, def *taskDef) (hard, soft time.Duration) {
	return limit(msg.TimeLimit[0], def.opts.TimeLimit, w.cfg.TimeLimit, def.opts.AppTimeLimit),
		limit(msg.TimeLimit[1], def.opts.SoftTimeLimit, w.cfg.SoftTimeLimit, def.opts.AppSoftTimeLimit)
}

// limit is Celery's precedence of one time limit: the message's timelimit
// header (apply_async(time_limit=...)), else the task's own attribute
// (decorator option, `control time_limit`), else the worker's setting
// (`celery worker --time-limit`: positive = that limit, negative = none),
// else the app configuration's default (task_time_limit in the app's
// conf, which the worker flag overrides). 0 = no limit.
func limit(hdr *float64, task, worker, app time.Duration) time.Duration {
	switch {
	case hdr != nil && *hdr > 0:
		return time.Duration(*hdr * float64(time.Second))
	case task > 0:
		return task
	case worker > 0:
		return worker
	case worker < 0:
		return 0
	case app > 0:
		return app
	}
	return 0
}

// finish records the outcome of a handler and acknowledges the message.
func (w *Worker) finish(ctx context.Context, j *job, t *Task, tctx context.Context, o outcome, begin time.Time) {
	elapsed := time.Since(begin)
	if o.err != nil && errors.Is(context.Cause(tctx), ErrWorkerShutdown) && !o.panicked {
		w.abandonJob(ctx, j, t)
		return
	}
	// Transient errors become a Retry with backoff (autoretry.go).
	o = w.autoRetry(j, o)
	if w.hookFinish(ctx, j, tctx, o) { // terminated by a remote revoke
		return
	}
	if rej, ok := asReject(o); ok {
		w.rejectTask(ctx, j, t, rej) // reject_task.go
		return
	}
	var rerr *RetryError
	switch {
	case o.err == nil:
		w.succeed(ctx, j, t, o.result, elapsed)
	case errors.As(o.err, &rerr) && !o.panicked:
		w.retry(ctx, j, t, rerr, tctx)
	default:
		pe := toPyError(o.err, tctx)
		tb := pyTraceback(t.Name, pe, o.frames)
		j.log.Error(fmt.Sprintf("Task %s[%s] raised unexpected: %s", t.Name, t.ID, protocol.PyReprException(pe.Info())),
			"elapsed", elapsed, "err", o.err)
		var m *protocol.ResultMeta
		if !j.def.opts.IgnoreResult {
			m = w.meta(t, protocol.StateFailure, pe.Info())
			m.Traceback = &tb
		}
		w.settleFinal(ctx, j, m)
		w.canvasFailed(ctx, j, pe.Info(), &tb) // canvas.go
	}
}

func (w *Worker) succeed(ctx context.Context, j *job, t *Task, result any, elapsed time.Duration) {
	if w.ignoreResult(j) && !hasCanvas(j.msg) {
		j.log.Info(fmt.Sprintf("Task %s[%s] succeeded in %.6fs", t.Name, t.ID, elapsed.Seconds()))
		w.settleFinal(ctx, j, nil)
		return
	}
	raw, err := json.Marshal(result)
	if err != nil {
		pe := encodeError(err)
		tb := pyTraceback(t.Name, pe, nil)
		j.log.Error("task result is not JSON-encodable", "err", err)
		m := w.meta(t, protocol.StateFailure, pe.Info())
		m.Traceback = &tb
		w.settleFinal(ctx, j, m)
		w.canvasFailed(ctx, j, pe.Info(), &tb) // canvas.go
		return
	}
	// Callbacks and the next chain step go out before the result is
	// stored, the chord part is recorded after (celery's trace order).
	w.canvasSuccess(ctx, j, raw)
	if w.ignoreResult(j) {
		j.log.Info(fmt.Sprintf("Task %s[%s] succeeded in %.6fs", t.Name, t.ID, elapsed.Seconds()))
		w.settleFinal(ctx, j, nil)
		w.canvasSucceeded(ctx, j, raw)
		return
	}
	if j.log.Enabled(ctx, slog.LevelInfo) {
		j.log.Info(fmt.Sprintf("Task %s[%s] succeeded in %.6fs: %s", t.Name, t.ID, elapsed.Seconds(),
			truncate(string(raw), 256)))
	}
	w.settleFinal(ctx, j, w.meta(t, protocol.StateSuccess, json.RawMessage(raw)))
	w.canvasSucceeded(ctx, j, raw)
}

// settleFinal stores the final meta (nil = nothing) and acknowledges the
// message if it was not acked early (with the next fetch folded in when
// the backend can, groupcommit.go).
func (w *Worker) settleFinal(ctx context.Context, j *job, m *protocol.ResultMeta) {
	if w.settleNext(ctx, j, m) {
		return
	}
	w.settle(ctx, j, m)
}

// abandonJob gives up a running job at shutdown: restore its message if it
// is still unacked, else record WorkerLostError.
func (w *Worker) abandonJob(ctx context.Context, j *job, t *Task) {
	if !j.acked {
		j.log.Warn("task interrupted by shutdown; message restored to the front of its queue")
		if err := w.broker.Restore(ctx, j.d); err != nil {
			j.log.Error("restore failed; the message returns after the visibility timeout", "err", err)
		}
		w.forget(j)
		return
	}
	j.log.Warn("task interrupted by shutdown after an early ack; recording WorkerLostError")
	pe := &PyError{Type: "WorkerLostError", Module: "billiard.exceptions",
		Args: []any{"Worker exited prematurely: cold shutdown of " + w.cfg.Hostname + "."}}
	if !j.def.opts.IgnoreResult {
		if err := w.store(ctx, w.meta(t, protocol.StateFailure, pe.Info())); err != nil {
			j.log.Error("storing FAILURE failed", "err", err)
		}
	}
	w.forget(j)
}

// retry republishes the task (spec §6.5), stores RETRY and acks.
func (w *Worker) retry(ctx context.Context, j *job, t *Task, r *RetryError, tctx context.Context) {
	msg := j.msg
	maxR := j.def.maxRetries()
	if r.MaxRetries != nil {
		maxR = *r.MaxRetries
	}
	if maxR >= 0 && msg.Retries >= maxR {
		var pe *PyError
		if r.Err != nil {
			pe = toPyError(r.Err, tctx)
		} else {
			pe = maxRetriesExceeded(msg.Task, msg.ID, maxR)
		}
		j.log.Error(fmt.Sprintf("Task %s[%s] max retries (%d) exceeded: %s", t.Name, t.ID, maxR, pe.Error()))
		var m *protocol.ResultMeta
		if !j.def.opts.IgnoreResult {
			m = w.meta(t, protocol.StateFailure, pe.Info())
			tb := pyTraceback(t.Name, pe, nil)
			m.Traceback = &tb
		}
		w.settleFinal(ctx, j, m)
		w.canvasFailed(ctx, j, pe.Info(), nil) // canvas.go
		return
	}
	var eta time.Time
	countdown := r.Countdown
	if r.ETA != nil {
		eta = *r.ETA
		countdown = time.Until(eta)
	} else {
		if countdown <= 0 {
			countdown = j.def.retryDelay()
		}
		eta = time.Now().Add(countdown)
	}
	raw, queue, prio, err := w.retryMessage(j, eta)
	if err == nil {
		err = w.broker.Publish(ctx, queue, prio, raw)
	}
	if err != nil {
		// Python drops the message (Reject) and stores nothing; we record
		// the failure so that clients get an answer.
		pe := &PyError{Type: "Exception", Module: "builtins", Args: []any{"retry could not be published: " + err.Error()}, Err: err}
		j.log.Error("retry publish failed", "err", err)
		m := w.meta(t, protocol.StateFailure, pe.Info())
		w.settleFinal(ctx, j, m)
		w.canvasFailed(ctx, j, pe.Info(), nil) // canvas.go
		return
	}
	var result any
	reason := ""
	if r.Err != nil {
		pe := toPyError(r.Err, tctx)
		result = pe.Info()
		reason = ": " + protocol.PyReprException(pe.Info())
	}
	// celery's Retry.humanize: "Retry in 5s" / "Retry in 0.2s".
	when := strconv.FormatFloat(countdown.Round(time.Millisecond).Seconds(), 'f', -1, 64)
	tb := fmt.Sprintf("Traceback (most recent call last):\n  File \"omics-worker\", line 0, in %s\ncelery.exceptions.Retry: Retry in %ss%s\n",
		t.Name, when, reason)
	j.log.Info(fmt.Sprintf("Task %s[%s] retry: Retry in %ss%s", t.Name, t.ID, when, reason))
	m := w.meta(t, protocol.StateRetry, result)
	m.Traceback = &tb
	m.Children = []any{[]any{[]any{msg.ID, nil}, nil}}
	w.settleFinal(ctx, j, m)
}

// goFrames renders the current goroutine's stack (skipping skip frames)
// as Python-traceback-like "File" lines, outermost first.
func goFrames(skip int) []string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(skip, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			out = append(out, fmt.Sprintf("File %q, line %d, in %s", f.File, f.Line, f.Function))
		}
		if !more {
			break
		}
	}
	// Python prints the innermost frame last.
	for i, k := 0, len(out)-1; i < k; i, k = i+1, k-1 {
		out[i], out[k] = out[k], out[i]
	}
	return out
}

// retryMessage encodes the retry of j's message (spec §6.5): same id, task,
// args, kwargs, embed, custom headers and expires text; retries+1; the new
// eta; parent_id = the original, or the task's own id when it had none.
// It returns the envelope and where to publish it.
func (w *Worker) retryMessage(j *job, eta time.Time) (raw []byte, queue string, priority int, err error) {
	m := *j.msg
	m.Retries++
	eta = eta.UTC()
	m.ETA = &eta
	if m.ParentID == "" {
		m.ParentID = m.ID
	}
	if m.RootID == "" {
		m.RootID = m.ID
	}
	env := j.d.Envelope
	di := env.Properties.DeliveryInfo
	queue = di.RoutingKey
	if di.Exchange != "" || queue == "" {
		// Only direct routing to a queue is supported by Broker.Publish;
		// send the retry to the queue the message came from.
		queue = j.d.Queue
	}
	priority = env.Properties.Priority
	raw, err = protocol.EncodeTask(&m, protocol.PublishOptions{
		Queue:    queue,
		ReplyTo:  env.Properties.ReplyTo,
		Priority: priority,
		Origin:   w.cfg.Hostname,
	})
	return raw, queue, priority, err
}

// truncate shortens s to at most n bytes (on a rune boundary) with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
