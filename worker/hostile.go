package worker

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

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
// failed full decoding; "" when they are not strings or the bytes are not
// a JSON object.
func peekRawTaskID(raw []byte) (id, task string) {
	if len(raw) == 0 || raw[0] != '{' || !utf8.Valid(raw) {
		return "", ""
	}
	var env struct {
		Headers struct {
			ID   any `json:"id"`
			Task any `json:"task"`
		} `json:"headers"`
	}
	if json.Unmarshal(raw, &env) != nil {
		return "", ""
	}
	id, _ = env.Headers.ID.(string)
	task, _ = env.Headers.Task.(string)
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
