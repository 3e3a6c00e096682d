package worker

// Messages rejected without running (undecodable, too large or deep,
// invalid, disallowed content, unregistered): the reasons reported to
// RejectObservers, and the FAILURE of a message whose id is still
// readable.

import (
	"errors"
	"fmt"
	"log/slog"

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
	return w.failureMeta(id, invalidTask(msg))
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
	for _, o := range w.observers() {
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
