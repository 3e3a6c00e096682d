package worker

// Task events: the runtime tells its Observers (worker/events,
// worker/metrics) about every step of a task's life. An event carries the
// runtime's own data (message, stored result, outcome); the Celery event
// fields (Python reprs of arguments, result and exception) are formatted
// by worker/events, and only when task events are enabled there. With no
// observer, the hooks build no event at all.

import (
	"context"
	"errors"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Task event types (Celery's names).
const (
	EventTaskReceived  = "task-received"
	EventTaskStarted   = "task-started"
	EventTaskSucceeded = "task-succeeded"
	EventTaskFailed    = "task-failed"
	EventTaskRetried   = "task-retried"
	EventTaskRevoked   = "task-revoked"
	EventTaskRejected  = "task-rejected"
)

// TaskEvent is one step of a task's life. Its fields are shared with the
// runtime and must be treated as read only.
type TaskEvent struct {
	// Type is a Celery task event type (EventTask*).
	Type string
	// ID and Name are the task id and name (shadow name if any).
	ID, Name string
	// Task is the registered task name (never the shadow name, which the
	// client chooses); "" when the name is not registered. Metrics label
	// by it so that their series stay bounded by the registry.
	Task string
	// Queue is the queue the message came from.
	Queue string
	// Runtime is the execution time (task-succeeded, task-failed, ...;
	// 0 for a task that never started).
	Runtime time.Duration

	// Message is the decoded task message (task-received reads its
	// argument reprs, root and parent ids, retries, eta and expires).
	Message *protocol.TaskMessage
	// Meta is the result stored with the final state (task-succeeded,
	// task-failed, task-retried, task-revoked); nil when nothing was
	// stored (ignore_result).
	Meta *protocol.ResultMeta
	// Result is the handler's return value of a task-succeeded whose Meta
	// is nil.
	Result any
	// Err is the handler's error (task-failed, task-retried); Exception
	// prefers the exception stored in Meta.
	Err error
	// Ran reports whether the task was registered and started (a
	// task-failed of a message rejected before running has no traceback).
	Ran bool
	// Expired: a task-revoked because the message's expires passed.
	Expired bool
	// Terminated: a task-revoked by `revoke --terminate`, with the signal
	// number Signum.
	Terminated bool
	Signum     int
	// Requeue: a task-rejected whose message was requeued.
	Requeue bool
}

// Exception is the exception of a task-failed or task-retried: the one
// stored in Meta, else Err as the Python exception the runtime records for
// it; ok is false when there is neither.
func (ev TaskEvent) Exception() (info *protocol.ExceptionInfo, ok bool) {
	if ev.Meta != nil {
		if info, ok := ev.Meta.Result.(*protocol.ExceptionInfo); ok {
			return info, true
		}
	}
	if ev.Err != nil {
		return toPyError(ev.Err, nil).Info(), true
	}
	return nil, false
}

// Traceback is the traceback stored in Meta ("" when none).
func (ev TaskEvent) Traceback() string {
	if ev.Meta == nil || ev.Meta.Traceback == nil {
		return ""
	}
	return *ev.Meta.Traceback
}

// Observer receives task events. ObserveTask is called synchronously on
// the worker's goroutines and must not block.
type Observer interface {
	ObserveTask(ev TaskEvent)
}

// AddObserver registers o for task events (and, when it implements
// RejectObserver, for rejected messages). Call it before Run.
func (w *Worker) AddObserver(o Observer) {
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	obs := append(*x.observers.Load(), o)
	x.observers.Store(&obs)
}

// observers returns the registered observers (do not modify).
func (w *Worker) observers() []Observer { return *w.mon.observers.Load() }

func emit(obs []Observer, ev TaskEvent) {
	for _, o := range obs {
		o.ObserveTask(ev)
	}
}

func taskDisplayName(msg *protocol.TaskMessage) string {
	if msg.Shadow != "" {
		return msg.Shadow
	}
	return msg.Task
}

// taskEvent is the event typ of j, with the fields every event has.
func (w *Worker) taskEvent(j *job, typ string) TaskEvent {
	ev := TaskEvent{Type: typ, ID: j.msg.ID, Name: taskDisplayName(j.msg), Queue: j.d.Queue, Message: j.msg}
	if j.def != nil {
		ev.Task = j.msg.Task
	}
	return ev
}

// --- hooks called by the runtime -----------------------------------------

// hookReceived runs after a message was decoded, found registered and not
// expired: a revoked id is discarded (REVOKED stored, message acked), else
// task-received is announced and rate limits apply. It reports whether j
// was taken care of.
func (w *Worker) hookReceived(ctx context.Context, j *job) bool {
	if w.discardRevoked(ctx, j) {
		return true
	}
	if obs := w.observers(); len(obs) > 0 {
		emit(obs, w.taskEvent(j, EventTaskReceived))
	}
	if eta := j.msg.ETA; eta != nil && time.Until(*eta) > 0 {
		return false // ETA tasks bypass rate limits (a difference from Celery)
	}
	return w.holdForRate(j)
}

// hookStart runs when a pool goroutine takes j, before anything is
// stored: a revoked id is discarded, else the task counts as accepted
// (stats total, processed) and task-started is announced.
func (w *Worker) hookStart(ctx context.Context, j *job) bool {
	if w.discardRevoked(ctx, j) {
		return true
	}
	x := &w.mon
	x.processed.Add(1)
	x.mu.Lock()
	x.started[j] = time.Now()
	x.total[j.msg.Task]++
	x.mu.Unlock()
	if obs := w.observers(); len(obs) > 0 {
		emit(obs, w.taskEvent(j, EventTaskStarted))
	}
	return false
}

// hookSettle runs when j is settled with meta (nil: nothing stored): it
// announces the final task event and drops the per-job state.
func (w *Worker) hookSettle(j *job, meta *protocol.ResultMeta) {
	x := &w.mon
	x.mu.Lock()
	begin, started := x.started[j]
	o, hasOutcome := x.outcomes[j]
	delete(x.started, j)
	delete(x.outcomes, j)
	x.mu.Unlock()
	if j.msg == nil || errors.Is(o.err, errRevokedAnnounced) {
		return
	}
	obs := w.observers()
	if len(obs) == 0 {
		return
	}
	typ := finalEventType(meta, o, hasOutcome)
	if typ == "" {
		return
	}
	ev := w.taskEvent(j, typ)
	ev.Meta, ev.Ran = meta, j.def != nil && started
	if started {
		ev.Runtime = time.Since(begin)
	}
	switch typ {
	case EventTaskSucceeded:
		if meta == nil {
			ev.Result = o.result
		}
	case EventTaskFailed, EventTaskRetried:
		ev.Err = o.err
	case EventTaskRevoked:
		info, ok := meta.Result.(*protocol.ExceptionInfo)
		ev.Expired = ok && len(info.Message) == 1 && info.Message[0] == "expired"
	}
	emit(obs, ev)
}

// finalEventType is the event announcing a job settled with meta (nil:
// nothing stored, then the handler's outcome decides); "" for none.
func finalEventType(meta *protocol.ResultMeta, o outcome, hasOutcome bool) string {
	status := ""
	if meta != nil {
		status = meta.Status
	} else if hasOutcome {
		var rerr *RetryError
		switch {
		case o.err == nil:
			status = protocol.StateSuccess
		case errors.As(o.err, &rerr) && !o.panicked:
			status = protocol.StateRetry
		default:
			status = protocol.StateFailure
		}
	}
	switch status {
	case protocol.StateSuccess:
		return EventTaskSucceeded
	case protocol.StateFailure:
		return EventTaskFailed
	case protocol.StateRetry:
		return EventTaskRetried
	case protocol.StateRevoked:
		return EventTaskRevoked
	}
	return ""
}
