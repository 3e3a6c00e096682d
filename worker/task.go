package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Task is the request a handler runs: Celery's task.request.
type Task struct {
	// ID is the task id.
	ID string
	// Name is the registered task name (the "task" header).
	Name string
	// Args and Kwargs are the call arguments; JSON numbers are json.Number.
	Args   []any
	Kwargs map[string]any
	// Retries counts previous retries.
	Retries int
	// Hostname is this worker's node name.
	Hostname string
	// RootID, ParentID and GroupID are the workflow ids (may be empty).
	RootID, ParentID, GroupID string
	// ETA and Expires are the message's times, if any.
	ETA, Expires *time.Time
	// Queue is the queue the message was consumed from.
	Queue string
	// DeliveryInfo is the envelope's delivery_info (exchange, routing key,
	// redelivered).
	DeliveryInfo protocol.DeliveryInfo
	// Headers are the raw message headers (custom headers included).
	Headers map[string]json.RawMessage
	// Message is the decoded message.
	Message *protocol.TaskMessage

	def *taskDef
	w   *Worker
	// finished is set once the runtime recorded the task's final state
	// (hard time limit, shutdown): later UpdateState calls are refused so
	// an abandoned handler cannot overwrite it.
	finished atomic.Bool
	// gate lets a commit and the hard time limit decide in one place
	// (commitgate.go).
	gate commitGate
}

// ErrTaskFinished is returned by UpdateState after the runtime has already
// recorded the task's final state (its hard time limit expired or the
// worker gave it up at shutdown).
var ErrTaskFinished = errors.New("task already finished")

// UpdateState stores a custom (or standard) state with meta as its result,
// e.g. UpdateState(ctx, "PROGRESS", map[string]any{"status": "parsing",
// "progress": 40}). Like Celery it writes even for tasks that ignore their
// result. With a backend that queues writes (the Redis backend attached to
// its broker) it does not wait for Redis: the write is ordered before the
// task's final state, and a failed write is retried and logged, so the
// error returned is only an encoding or closed-backend error.
func (t *Task) UpdateState(ctx context.Context, state string, meta any) error {
	if state == "" {
		return fmt.Errorf("update state of %s: empty state", t.ID)
	}
	if t.finished.Load() {
		return fmt.Errorf("update state %s of %s: %w", state, t.ID, ErrTaskFinished)
	}
	m := t.w.meta(t, state, meta)
	if err := t.w.storeNoWait(ctx, m); err != nil {
		return fmt.Errorf("update state %s of %s: %w", state, t.ID, err)
	}
	return nil
}

// Arg returns the argument called name: the keyword argument if present,
// else the positional argument bound to it by TaskOptions.Params.
func (t *Task) Arg(name string) (any, bool) {
	if v, ok := t.Kwargs[name]; ok {
		return v, true
	}
	if t.def != nil {
		if i := slices.Index(t.def.opts.Params, name); i >= 0 && i < len(t.Args) {
			return t.Args[i], true
		}
	}
	return nil, false
}

func (t *Task) funcName() string {
	n := t.Name
	if i := strings.LastIndexByte(n, '.'); i >= 0 {
		n = n[i+1:]
	}
	return n
}

func (t *Task) missing(name string) error {
	return PyErrorf("TypeError", "%s() missing 1 required argument: '%s'", t.funcName(), name)
}

// pyTypeName is Python's type name of a decoded JSON value.
func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return "int"
		}
		return "float"
	case float64:
		return "float"
	case int, int64:
		return "int"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

func wrongType(name, want string, v any) error {
	return PyErrorf("TypeError", "argument '%s' must be %s, not %s (%s)", name, want, pyTypeName(v), protocol.PyRepr(v))
}

// IntArg returns a required integer argument. Strings, floats with a
// fraction, booleans and null are TypeErrors.
func (t *Task) IntArg(name string) (int64, error) {
	v, ok := t.Arg(name)
	if !ok {
		return 0, t.missing(name)
	}
	return asInt(name, v)
}

// IntArgOr returns an optional integer argument (def when absent or null).
func (t *Task) IntArgOr(name string, def int64) (int64, error) {
	v, ok := t.Arg(name)
	if !ok || v == nil {
		return def, nil
	}
	return asInt(name, v)
}

func asInt(name string, v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if f, err := x.Float64(); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), nil
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	}
	return 0, wrongType(name, "int", v)
}

// FloatArg returns a required number argument.
func (t *Task) FloatArg(name string) (float64, error) {
	v, ok := t.Arg(name)
	if !ok {
		return 0, t.missing(name)
	}
	return asFloat(name, v)
}

// FloatArgOr returns an optional number argument.
func (t *Task) FloatArgOr(name string, def float64) (float64, error) {
	v, ok := t.Arg(name)
	if !ok || v == nil {
		return def, nil
	}
	return asFloat(name, v)
}

func asFloat(name string, v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f, nil
		}
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	}
	return 0, wrongType(name, "a number", v)
}

// StringArg returns a required string argument.
func (t *Task) StringArg(name string) (string, error) {
	v, ok := t.Arg(name)
	if !ok {
		return "", t.missing(name)
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(name, "str", v)
	}
	return s, nil
}

// StringArgOr returns an optional string argument.
func (t *Task) StringArgOr(name, def string) (string, error) {
	v, ok := t.Arg(name)
	if !ok || v == nil {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", wrongType(name, "str", v)
	}
	return s, nil
}

// BoolArgOr returns an optional boolean argument.
func (t *Task) BoolArgOr(name string, def bool) (bool, error) {
	v, ok := t.Arg(name)
	if !ok || v == nil {
		return def, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, wrongType(name, "bool", v)
	}
	return b, nil
}

// checkSignature reports the TypeError Python raises when a call does not
// fit the declared parameters.
func (t *Task) checkSignature() error {
	if t.def == nil || t.def.opts.Params == nil {
		return nil
	}
	params := t.def.opts.Params
	if !t.def.opts.VarArgs && len(t.Args) > len(params) {
		return PyErrorf("TypeError", "%s() takes %d positional %s but %d %s given", t.funcName(),
			len(params), plural(len(params), "argument", "arguments"), len(t.Args), plural(len(t.Args), "was", "were"))
	}
	for k := range t.Kwargs {
		i := slices.Index(params, k)
		if i < 0 {
			if !t.def.opts.VarKwargs {
				return PyErrorf("TypeError", "%s() got an unexpected keyword argument '%s'", t.funcName(), k)
			}
			continue
		}
		if i < len(t.Args) {
			return PyErrorf("TypeError", "%s() got multiple values for argument '%s'", t.funcName(), k)
		}
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
