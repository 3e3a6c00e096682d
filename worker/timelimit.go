package worker

// Time limits: changing a task's soft and hard limits at run time (the
// time_limit remote command) and the TimeLimitExceeded a hard limit
// records. The limits themselves are enforced in exec.go and the commit
// gate (commitgate.go).

import (
	"encoding/json"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// SetTimeLimits changes a registered task's soft and hard time limits for
// messages received from now on (0 = the worker's default; a message's
// timelimit header still wins). Error: ErrUnknownTask.
func (w *Worker) SetTimeLimits(task string, soft, hard time.Duration) error {
	r := w.reg
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.tasks[task]
	if d == nil {
		return ErrUnknownTask
	}
	nd := *d // copy on write: running jobs keep their definition
	nd.opts.SoftTimeLimit, nd.opts.TimeLimit = soft, hard
	r.tasks[task] = &nd
	return nil
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
