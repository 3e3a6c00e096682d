package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// Celery task states (spec §3.2).
const (
	StatePending  = "PENDING"
	StateReceived = "RECEIVED"
	StateStarted  = "STARTED"
	StateSuccess  = "SUCCESS"
	StateFailure  = "FAILURE"
	StateRevoked  = "REVOKED"
	StateRejected = "REJECTED"
	StateRetry    = "RETRY"
	StateIgnored  = "IGNORED"
)

// IsReady reports whether state is final (SUCCESS, FAILURE, REVOKED).
func IsReady(state string) bool {
	return state == StateSuccess || state == StateFailure || state == StateRevoked
}

// IsException reports whether the result of state is an exception
// (RETRY, FAILURE, REVOKED).
func IsException(state string) bool {
	return state == StateRetry || state == StateFailure || state == StateRevoked
}

// IsPropagate reports whether AsyncResult.get re-raises state's exception
// (FAILURE, REVOKED).
func IsPropagate(state string) bool {
	return state == StateFailure || state == StateRevoked
}

// ExceptionInfo is the Python-decodable exception dict (spec §3.5).
type ExceptionInfo struct {
	Type    string `json:"exc_type"`
	Message []any  `json:"exc_message"`
	Module  string `json:"exc_module"`
}

// Common exception classes (module, type) a Python client has imported.
const (
	ModuleBuiltins = "builtins"
	ModuleCelery   = "celery.exceptions"
	ModuleBilliard = "billiard.exceptions"
)

// NewExceptionInfo builds an exception dict; module "" encodes as null
// (the client then synthesizes an Exception subclass named excType).
func NewExceptionInfo(excType, module string, args ...any) *ExceptionInfo {
	if args == nil {
		args = []any{}
	}
	return &ExceptionInfo{Type: excType, Message: args, Module: module}
}

// Error renders the exception like Python's repr, so *ExceptionInfo is an
// error.
func (e *ExceptionInfo) Error() string { return PyReprException(e) }

// MarshalJSON writes exc_type, exc_message (always a list), exc_module
// (null when empty).
func (e ExceptionInfo) MarshalJSON() ([]byte, error) {
	var o object
	o.add("exc_type", e.Type)
	msg := e.Message
	if msg == nil {
		msg = []any{}
	}
	o.add("exc_message", pyJSONValue(msg))
	if e.Module == "" {
		o.add("exc_module", nil)
	} else {
		o.add("exc_module", e.Module)
	}
	return o.bytes()
}

// UnmarshalJSON accepts exc_message as a list or a single value (wrapped).
func (e *ExceptionInfo) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type    *string         `json:"exc_type"`
		Message json.RawMessage `json:"exc_message"`
		Module  *string         `json:"exc_module"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Type == nil {
		return errors.New("protocol: exception dict without exc_type")
	}
	*e = ExceptionInfo{Type: *raw.Type, Message: []any{}}
	if raw.Module != nil {
		e.Module = *raw.Module
	}
	if !isNull(raw.Message) {
		if err := unmarshalNumber(raw.Message, &e.Message); err != nil {
			var one any
			if err := unmarshalNumber(raw.Message, &one); err != nil {
				return err
			}
			e.Message = []any{one}
		}
	}
	return nil
}

// ResultMeta is the value stored at celery-task-meta-<id> (spec §3.2).
type ResultMeta struct {
	Status    string
	Result    any // JSON value, or *ExceptionInfo for exception states
	Traceback *string
	Children  []any      // nil encodes as [] (what a worker writes)
	DateDone  *time.Time // set for READY states
	GroupID   string
	ParentID  string
	TaskID    string
	// Extended holds result_extended keys (name, args, kwargs, worker,
	// retries, queue) and any other unknown keys; written before task_id.
	Extended map[string]any
	// NaiveDateDone writes date_done as naive UTC ("2024-05-01T12:00:00.123456",
	// celery <= 5.3) instead of the default aware "+00:00" form (5.4+).
	// Both parse on every celery 5.x client.
	NaiveDateDone bool
}

var extendedOrder = []string{"name", "args", "kwargs", "worker", "retries", "queue"}

// MarshalJSON writes the keys in Python's order: status, result,
// traceback, children, date_done, [group_id], [parent_id], [extended…],
// task_id. Floats keep Python's ".0".
func (m ResultMeta) MarshalJSON() ([]byte, error) {
	var o object
	o.add("status", m.Status)
	switch r := m.Result.(type) {
	case *ExceptionInfo:
		if r == nil {
			o.add("result", nil)
		} else {
			o.add("result", r)
		}
	default:
		o.add("result", pyJSONValue(m.Result))
	}
	o.add("traceback", m.Traceback)
	children := m.Children
	if children == nil {
		children = []any{}
	}
	o.add("children", pyJSONValue(children))
	switch {
	case m.DateDone == nil:
		o.add("date_done", nil)
	case m.NaiveDateDone:
		o.add("date_done", pyfmt.FormatISONaive(m.DateDone.UTC()))
	default:
		o.add("date_done", pyfmt.FormatISO(m.DateDone.UTC()))
	}
	if m.GroupID != "" {
		o.add("group_id", m.GroupID)
	}
	if m.ParentID != "" {
		o.add("parent_id", m.ParentID)
	}
	if len(m.Extended) > 0 {
		for _, k := range extendedOrder {
			if v, ok := m.Extended[k]; ok {
				o.add(k, pyJSONValue(v))
			}
		}
		var rest []string
		for k := range m.Extended {
			if _, done := o.vals[k]; !done && k != "task_id" {
				rest = append(rest, k)
			}
		}
		sort.Strings(rest)
		for _, k := range rest {
			o.add(k, pyJSONValue(m.Extended[k]))
		}
	}
	o.add("task_id", m.TaskID)
	return o.bytes()
}

// ErrBadResultMeta: the bytes are not a result meta object.
var ErrBadResultMeta = errors.New("protocol: malformed result meta")

// DecodeResultMeta parses a stored result (JSON, as written by any celery
// 5.x backend). For exception states a result with exc_type becomes an
// *ExceptionInfo; other values are JSON values with json.Number numbers.
func DecodeResultMeta(b []byte) (*ResultMeta, error) {
	var m ResultMeta
	if err := m.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	return &m, nil
}

// UnmarshalJSON implements json.Unmarshaler (see DecodeResultMeta).
func (m *ResultMeta) UnmarshalJSON(b []byte) error {
	var top map[string]json.RawMessage
	if err := unmarshalNumber(b, &top); err != nil || top == nil {
		return fmt.Errorf("%w: not a JSON object", ErrBadResultMeta)
	}
	*m = ResultMeta{}
	for k, v := range top {
		switch k {
		case "status":
			if json.Unmarshal(v, &m.Status) != nil {
				return fmt.Errorf("%w: status is not a string", ErrBadResultMeta)
			}
		case "result":
		case "traceback":
			if !isNull(v) {
				var s string
				if json.Unmarshal(v, &s) != nil {
					return fmt.Errorf("%w: traceback is not a string", ErrBadResultMeta)
				}
				m.Traceback = &s
			}
		case "children":
			if !isNull(v) {
				if unmarshalNumber(v, &m.Children) != nil {
					return fmt.Errorf("%w: children is not a list", ErrBadResultMeta)
				}
			}
		case "date_done":
			if isNull(v) {
				continue
			}
			var s string
			if json.Unmarshal(v, &s) != nil {
				return fmt.Errorf("%w: date_done is not a string", ErrBadResultMeta)
			}
			t, err := ParseISO(s)
			if err != nil {
				return fmt.Errorf("%w: date_done: %w", ErrBadResultMeta, err)
			}
			m.DateDone = &t
			if len(s) > 0 && !hasOffset(s) {
				m.NaiveDateDone = true
			}
		case "group_id":
			m.GroupID = looseString(v)
		case "parent_id":
			m.ParentID = looseString(v)
		case "task_id":
			m.TaskID = looseString(v)
		default:
			var x any
			if unmarshalNumber(v, &x) == nil {
				if m.Extended == nil {
					m.Extended = map[string]any{}
				}
				m.Extended[k] = x
			}
		}
	}
	raw := top["result"]
	if IsException(m.Status) && !isNull(raw) && bytes.Contains(raw, []byte(`"exc_type"`)) {
		var e ExceptionInfo
		if err := e.UnmarshalJSON(raw); err == nil {
			m.Result = &e
			return nil
		}
	}
	if !isNull(raw) {
		if err := unmarshalNumber(raw, &m.Result); err != nil {
			return fmt.Errorf("%w: result: %w", ErrBadResultMeta, err)
		}
	}
	return nil
}

// hasOffset reports whether an ISO timestamp string carries a UTC offset.
func hasOffset(s string) bool {
	if s[len(s)-1] == 'Z' || s[len(s)-1] == 'z' {
		return true
	}
	if len(s) <= 10 {
		return false
	}
	tail := s[10:]
	return bytes.ContainsAny([]byte(tail), "+") || bytes.Count([]byte(tail), []byte("-")) > 0
}

// Exception returns the result as an *ExceptionInfo, or nil.
func (m *ResultMeta) Exception() *ExceptionInfo {
	e, _ := m.Result.(*ExceptionInfo)
	return e
}
