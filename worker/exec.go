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

// execute runs one reserved job on the calling pool goroutine, the
// handler included (no goroutine of its own: each hand-off between
// goroutines costs thread wake-ups). It reports false when the job was
// taken over while its handler ran (hard time limit, cold shutdown
// abandon, see hardLimit and abandonRunning): the taker settled the job
// and owns the pool slot now, so the caller must leave the pool without
// touching the job.
func (w *Worker) execute(j *job) bool {
	ctx := context.Background()
	msg, def := j.msg, j.def
	if w.expired(ctx, j) {
		return true
	}
	if w.hookStart(ctx, j) { // revoked while reserved
		return true
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
		return true
	}

	begin := time.Now()
	if soft > 0 {
		st := time.AfterFunc(soft, func() {
			j.log.Warn(fmt.Sprintf("Soft time limit (%gs) exceeded for %s[%s]", soft.Seconds(), msg.Task, msg.ID))
			cancel(ErrSoftTimeLimitExceeded)
		})
		defer st.Stop()
	}
	j.task = t
	j.exec.Store(execRunning) // from here abandonRunning and hardLimit may take j over
	var stopHard func() bool
	if hard > 0 {
		stopHard = w.armHardLimit(hard, j, t, cancel)
	}
	select {
	case <-w.abandon: // cold shutdown began before the handler
		if stopHard != nil {
			stopHard()
		}
		if !j.reclaim() {
			return false
		}
		t.finished.Store(true)
		w.abandonJob(ctx, j, t)
		return true
	default:
	}
	o := callHandler(def.handler, tctx, t)
	if stopHard != nil {
		stopHard()
	}
	if !j.reclaim() {
		return false // taken over: the outcome is dropped, as the limit decided
	}
	w.finish(ctx, j, t, tctx, o, begin)
	return true
}

// Handler states of a job (job.exec).
const (
	execIdle     int32 = iota // the handler has not started
	execRunning               // the handler runs on its pool goroutine
	execLimiting              // hardLimit is deciding (the commit gate), see limitDone
	execReturned              // it returned (or never ran): its goroutine settles the job
	execTaken                 // hardLimit or abandonRunning took the job over
)

// reclaim is called by j's pool goroutine when the handler returned: true
// when the goroutine still owns j (then nobody can take it over any more),
// false when j was taken over. While the hard limit decides, it waits for
// the decision: the limit that fired first wins, as when the handler
// returns just after.
func (j *job) reclaim() bool {
	for {
		if j.exec.CompareAndSwap(execRunning, execReturned) {
			return true
		}
		if j.exec.Load() != execLimiting {
			return false
		}
		<-j.limitDone
	}
}

// callHandler runs the handler, turning a panic into an outcome.
func callHandler(h Handler, ctx context.Context, t *Task) (o outcome) {
	defer func() {
		if r := recover(); r != nil {
			o = outcome{err: fmt.Errorf("panic: %v", r), panicked: true, frames: goFrames(3)}
		}
	}()
	o.result, o.err = h(ctx, t)
	return o
}

// armHardLimit calls hardLimit when the hard limit passes; the returned
// stop disarms it.
func (w *Worker) armHardLimit(hard time.Duration, j *job, t *Task, cancel context.CancelCauseFunc) (stop func() bool) {
	if w.cfg.hardTimer != nil { // tests fire the limit themselves
		return w.cfg.hardTimer(hard, func() {
			if j.claimLimit() {
				go w.hardLimit(hard, j, t, cancel)
			}
		})
	}
	return time.AfterFunc(hard, func() {
		if j.claimLimit() {
			w.hardLimit(hard, j, t, cancel)
		}
	}).Stop
}

// claimLimit moves a running handler's job to execLimiting: from here
// the hard limit decides (hardLimit), even if the handler returns first.
// False when the handler returned or the job was taken already.
func (j *job) claimLimit() bool {
	if j.exec.Load() != execRunning {
		return false
	}
	j.limitDone = make(chan struct{}) // read only by whoever sees execLimiting
	return j.exec.CompareAndSwap(execRunning, execLimiting)
}

// hardLimit runs on the hard limit's timer goroutine, after claimLimit,
// while j's handler may still be running on its pool goroutine (which
// then waits for this decision, reclaim). Unless the task committed its
// effect first (Task.Commit: then its own outcome is the result), it
// takes the job over: cancels the
// handler's context, records TimeLimitExceeded as celery's main process
// does (spec §3.7), and goes on as the pool slot, so a handler that
// ignores its context costs one goroutine, not a slot. The handler's
// outcome, whenever it comes, is dropped.
func (w *Worker) hardLimit(hard time.Duration, j *job, t *Task, cancel context.CancelCauseFunc) {
	msg := j.msg
	if !t.gate.limit() {
		j.log.Warn(fmt.Sprintf("Hard time limit (%gs) reached after %s[%s] committed; waiting for its result", hard.Seconds(), msg.Task, msg.ID))
		j.exec.Store(execRunning)
		close(j.limitDone)
		return
	}
	j.exec.Store(execTaken)
	close(j.limitDone)
	ctx := context.Background()
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
	w.continueSlot(j)
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
