package worker

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// undecodableMeta is the FAILURE of a delivery whose envelope could not be
// decoded but whose task id is still readable (a kombu envelope with
// "headers": {"id": ...} and, say, a body that is not a string): the
// client gets InvalidTaskError instead of waiting on PENDING forever. It
// returns nil (nothing to store) when no id is readable.
func (w *Worker) undecodableMeta(log *slog.Logger, d *protocol.Delivery) *protocol.ResultMeta {
	id, task := peekRawTaskID(d.Raw)
	if id == "" {
		return nil
	}
	msg := "undecodable message"
	if d.DecodeErr != nil {
		msg = fmt.Sprintf("undecodable message: %v", d.DecodeErr)
	}
	log.Error("Received invalid task message; rejected", "task", task, "task_id", id, "err", msg)
	return w.failureMeta(id, invalidTask(msg), false)
}

// peekRawTaskID reads headers.id and headers.task of a raw envelope that
// failed full decoding (protocol.PeekRawTaskID: a shallow scan with no
// depth limit, so a message nested too deeply still gets its FAILURE);
// "" when they are not strings, the bytes are not a JSON object, or the id
// is longer than any task id (255 bytes).
func peekRawTaskID(raw []byte) (id, task string) {
	id, task = protocol.PeekRawTaskID(raw)
	if len(id) > 255 {
		return "", ""
	}
	return id, task
}

// timeLimitError is TimeLimitExceeded with the limit rendered as Python
// shows it: the timelimit header's own number when the limit came from the
// message (apply_async(time_limit=1) gives TimeLimitExceeded(1,), an int),
// else seconds as a float (celery worker --time-limit is a float option).
func timeLimitError(msg *protocol.TaskMessage, hard time.Duration) *PyError {
	pe := timeLimitExceeded(hard)
	if msg == nil || msg.TimeLimit[0] == nil || *msg.TimeLimit[0] <= 0 {
		return pe
	}
	var lim []json.Number
	if json.Unmarshal(msg.Headers["timelimit"], &lim) != nil || len(lim) == 0 {
		return pe
	}
	if n, err := lim[0].Int64(); err == nil {
		pe.Args = []any{n}
	}
	return pe
}

// Reasons a message is rejected without running (the bounded label values
// of the metrics' rejected-messages counter).
const (
	RejectUndecodable       = "undecodable"        // envelope or body cannot be decoded
	RejectTooDeep           = "too_deep"           // nested deeper than protocol.MaxNestingDepth
	RejectTooLarge          = "too_large"          // over --max-message-size
	RejectInvalid           = "invalid"            // malformed task fields (InvalidTaskError)
	RejectContentDisallowed = "content_disallowed" // pickle, yaml, ... (ContentDisallowed)
	RejectUnregistered      = "unregistered"       // task name not registered (NotRegistered)
	RejectUnknown           = "unknown_message"    // not a task message at all
)

// RejectObserver is an optional interface of an Observer (AddObserver):
// ObserveReject is called once for every message the worker rejects
// without running it, with one of the Reject* reasons. It is not a Celery
// event (Celery sends task-rejected only for the Reject exception); it
// must not block.
type RejectObserver interface {
	ObserveReject(reason string)
}

// hookReject tells the RejectObservers that a message was rejected.
func (w *Worker) hookReject(reason string) {
	x := w.xinit()
	x.mu.Lock()
	obs := x.observers
	x.mu.Unlock()
	for _, o := range obs {
		if r, ok := o.(RejectObserver); ok {
			r.ObserveReject(reason)
		}
	}
}

// decodeRejectReason classifies a decoding error.
func decodeRejectReason(err error) string {
	if errors.Is(err, protocol.ErrTooDeep) {
		return RejectTooDeep
	}
	return RejectUndecodable
}
