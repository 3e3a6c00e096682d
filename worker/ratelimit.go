package worker

// Per-task rate limits (Celery's rate_limit task attribute and the
// rate_limit remote command): a token bucket of capacity 1 per task name,
// applied when a message is received (hookReceived).

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// RateError is an invalid rate limit, shaped like the Python exception
// celery.utils.time.rate raises (ValueError or KeyError).
type RateError struct {
	// PyType is "ValueError" or "KeyError".
	PyType string
	// Msg is the exception's argument.
	Msg string
}

func (e *RateError) Error() string { return e.PyType + ": " + e.Msg }

// Repr is the Python repr of the exception, e.g.
// ValueError("could not convert string to float: 'x'").
func (e *RateError) Repr() string {
	return e.PyType + "(" + protocol.PyRepr(e.Msg) + ")"
}

// ParseRate converts a Celery rate limit ("10/s", "100/m", "5/h", "0.5",
// a number) to tasks per second, as celery.utils.time.rate: an empty or
// zero value means no limit (0).
func ParseRate(v any) (float64, error) {
	switch r := v.(type) {
	case nil:
		return 0, nil
	case bool:
		if !r {
			return 0, nil
		}
		return 1, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(r), 64)
		if err != nil {
			return 0, &RateError{"ValueError", "could not convert string to float: " + protocol.PyRepr(string(r))}
		}
		return f, nil
	case float64:
		return r, nil
	case int:
		return float64(r), nil
	case string:
		if r == "" {
			return 0, nil
		}
		ops, mod, _ := strings.Cut(r, "/")
		var div float64
		switch mod {
		case "", "s":
			div = 1
		case "m":
			div = 60
		case "h":
			div = 3600
		default:
			return 0, &RateError{"KeyError", mod}
		}
		f, ok := pyfmt.ParseFloat(ops)
		if !ok {
			return 0, &RateError{"ValueError", "could not convert string to float: " + protocol.PyRepr(ops)}
		}
		return f / div, nil
	}
	return 0, &RateError{"ValueError", fmt.Sprintf("invalid rate limit %v", v)}
}

type rateLimit struct {
	perSec float64
	next   time.Time
}

// reserve returns how long a task must wait for its token (capacity 1).
func (r *rateLimit) reserve(now time.Time) time.Duration {
	t := now
	if r.next.After(now) {
		t = r.next
	}
	r.next = t.Add(time.Duration(float64(time.Second) / r.perSec))
	return t.Sub(now)
}

// SetRateLimit sets (or, for a falsy value, disables) the rate limit of a
// registered task; enabled is Python's truthiness of the value (the reply
// wording), a zero rate means no limit. The raw value is shown by
// `inspect registered`. Errors: ErrUnknownTask, *RateError.
func (w *Worker) SetRateLimit(task string, value any) (enabled bool, err error) {
	perSec, err := ParseRate(value)
	if err != nil {
		return false, err
	}
	if w.reg.lookup(task) == nil {
		return false, ErrUnknownTask
	}
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	// Celery stores the raw value (so "0" is "set" but means no bucket).
	enabled = pyfmt.Truthy(value)
	if enabled {
		x.rateText[task] = rateText(value)
	} else {
		delete(x.rateText, task)
	}
	if perSec <= 0 || math.IsNaN(perSec) {
		delete(x.rates, task)
	} else {
		x.rates[task] = &rateLimit{perSec: perSec}
	}
	return enabled, nil
}

func rateText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return protocol.PyRepr(v)
}

// RateLimits returns the raw rate limit of every limited task.
func (w *Worker) RateLimits() map[string]string {
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	return maps.Clone(x.rateText)
}

// holdForRate delays j until its task's rate limit allows it; true means
// j waits in a timer (it keeps its prefetch slot, as in Celery).
func (w *Worker) holdForRate(j *job) bool {
	x := &w.mon
	x.mu.Lock()
	rl := x.rates[j.msg.Task]
	var wait time.Duration
	if rl != nil {
		wait = rl.reserve(time.Now())
	}
	x.mu.Unlock()
	if wait <= 0 {
		return false
	}
	j.log.Debug("Task delayed by its rate limit", "wait", wait.Round(time.Millisecond))
	w.mu.Lock()
	j.state = stateQueued
	j.timer = time.AfterFunc(wait, func() {
		w.mu.Lock()
		if j.state != stateQueued || w.stopping {
			w.mu.Unlock()
			return
		}
		w.ready = append(w.ready, j)
		w.mu.Unlock()
		w.signalReady()
	})
	w.mu.Unlock()
	return true
}
