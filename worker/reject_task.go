package worker

// A handler's request to reject its message (celery.exceptions.Reject),
// announced with a task-rejected event as celery's Request.reject does.

import (
	"context"
	"errors"
	"fmt"
)

// RejectError is celery's Reject exception: returned by a handler, the
// worker rejects the message instead of recording a result — requeued
// (back at the end of its queue) when Requeue, else dropped — and sends
// task-rejected {requeue}. Nothing is stored, as in celery. A message
// acked early (acks_late off) is only dropped: celery's Request.reject
// does nothing for an acknowledged message, so no event is sent either.
type RejectError struct {
	Reason  error
	Requeue bool
}

// Reject returns the outcome "reject this message" (celery's
// `raise Reject(reason, requeue=...)`).
func Reject(reason error, requeue bool) *RejectError {
	return &RejectError{Reason: reason, Requeue: requeue}
}

func (r *RejectError) Error() string {
	s := fmt.Sprintf("Reject(requeue=%v)", r.Requeue)
	if r.Reason != nil {
		s += ": " + r.Reason.Error()
	}
	return s
}

// Unwrap returns the reason.
func (r *RejectError) Unwrap() error { return r.Reason }

// errRejectAnnounced marks a job whose task-rejected was sent (no final
// task event follows, as for errRevokedAnnounced).
var errRejectAnnounced = fmt.Errorf("rejected (announced): %w", errRevokedAnnounced)

// rejectTask settles j as its handler's RejectError asks.
func (w *Worker) rejectTask(ctx context.Context, j *job, t *Task, r *RejectError) {
	j.log.Warn(fmt.Sprintf("%s[%s] %s", t.Name, t.ID, r.Error()))
	x := &w.mon
	x.mu.Lock()
	x.outcomes[j] = outcome{err: errRejectAnnounced}
	x.mu.Unlock()
	if j.acked {
		w.settle(ctx, j, nil)
		return
	}
	if obs := w.observers(); len(obs) > 0 {
		ev := w.taskEvent(j, EventTaskRejected)
		ev.Requeue = r.Requeue
		emit(obs, ev)
	}
	if !r.Requeue {
		w.settle(ctx, j, nil) // ack: the message is dropped
		return
	}
	defer w.forget(j)
	defer w.hookSettle(j, nil)
	if err := w.broker.Requeue(ctx, j.d); err != nil {
		j.log.Error("requeue failed; the message returns after the visibility timeout", "err", err)
	}
}

// asReject reports whether o is a handler's RejectError.
func asReject(o outcome) (*RejectError, bool) {
	var r *RejectError
	if o.panicked || !errors.As(o.err, &r) {
		return nil, false
	}
	return r, true
}
