package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/protocol"
)

// PyError is an error that names the Python exception a Python client
// should rebuild from the FAILURE (or RETRY) result: exc_type Type in module
// Module, constructed with Args. A handler returns a *PyError (possibly
// wrapped) to choose the exception class; any other error becomes
// builtins.Exception(err.Error()).
//
// Python clients resolve exc_module only among modules they have already
// imported; "builtins", "celery.exceptions", "kombu.exceptions" and
// "billiard.exceptions" are always available to a Celery client. For other
// modules the client synthesises an Exception subclass of that name.
type PyError struct {
	// Type is the exception's qualified class name ("ValueError").
	Type string
	// Module is the exception's module ("builtins" when empty).
	Module string
	// Args are the exception's constructor arguments (JSON values); the
	// client's str(exc) is Args[0] when there is exactly one.
	Args []any
	// Err is an optional underlying cause, reachable with errors.Unwrap.
	Err error
}

// NewPyError returns a builtins exception of type typ with one message
// argument, e.g. NewPyError("ValueError", "bad input").
func NewPyError(typ, msg string) *PyError {
	return &PyError{Type: typ, Module: "builtins", Args: []any{msg}}
}

// PyErrorf is NewPyError with a format string; a %w verb is unwrapped into
// Err.
func PyErrorf(typ, format string, a ...any) *PyError {
	err := fmt.Errorf(format, a...)
	return &PyError{Type: typ, Module: "builtins", Args: []any{err.Error()}, Err: errors.Unwrap(err)}
}

// Error renders the exception the way Python's traceback last line does:
// "ValueError: message".
func (e *PyError) Error() string {
	msg := e.message()
	if msg == "" {
		return e.Type
	}
	return e.Type + ": " + msg
}

// Unwrap returns the cause.
func (e *PyError) Unwrap() error { return e.Err }

// message is str(exc) in Python: the single argument, or the repr of the
// args tuple.
func (e *PyError) message() string {
	switch len(e.Args) {
	case 0:
		return ""
	case 1:
		if s, ok := e.Args[0].(string); ok {
			return s
		}
		return protocol.PyRepr(e.Args[0])
	default:
		return protocol.PyRepr(e.Args)
	}
}

// Info converts e to the wire exception dict.
func (e *PyError) Info() *protocol.ExceptionInfo {
	mod := e.Module
	if mod == "" {
		mod = "builtins"
	}
	// A URL in a message (a storage or database error) never carries
	// its password into the result backend.
	args := make([]any, len(e.Args))
	for i, a := range e.Args {
		if s, ok := a.(string); ok {
			a = mask.Text(s)
		}
		args[i] = a
	}
	return &protocol.ExceptionInfo{Type: e.Type, Module: mod, Message: args}
}

// Well-known exceptions raised by the runtime itself.
var (
	// ErrSoftTimeLimitExceeded is the cancellation cause of a task's
	// context when its soft time limit expires. A handler that returns the
	// context's error (or this error) gets FAILURE SoftTimeLimitExceeded.
	ErrSoftTimeLimitExceeded = &PyError{Type: "SoftTimeLimitExceeded", Module: "billiard.exceptions"}
	// ErrWorkerShutdown is the cancellation cause of running tasks at cold
	// shutdown (or at the end of the warm-shutdown timeout).
	ErrWorkerShutdown = errors.New("worker shutting down")
	// ErrHardTimeLimit is the cancellation cause when the hard time limit
	// expires; the runtime has already recorded FAILURE TimeLimitExceeded.
	ErrHardTimeLimit = errors.New("hard time limit exceeded")
)

func timeLimitExceeded(hard time.Duration) *PyError {
	return &PyError{Type: "TimeLimitExceeded", Module: "billiard.exceptions", Args: []any{hard.Seconds()}}
}

func notRegistered(name string) *PyError {
	return &PyError{Type: "NotRegistered", Module: "celery.exceptions", Args: []any{name}}
}

func contentDisallowed(msg string) *PyError {
	return &PyError{Type: "ContentDisallowed", Module: "kombu.exceptions", Args: []any{msg}}
}

func invalidTask(msg string) *PyError {
	return &PyError{Type: "InvalidTaskError", Module: "celery.exceptions", Args: []any{msg}}
}

func encodeError(err error) *PyError {
	return &PyError{Type: "EncodeError", Module: "kombu.exceptions", Args: []any{err.Error()}, Err: err}
}

func revokedError(reason string) *PyError {
	return &PyError{Type: "TaskRevokedError", Module: "celery.exceptions", Args: []any{reason}}
}

func maxRetriesExceeded(name, id string, max int) *PyError {
	return &PyError{Type: "MaxRetriesExceededError", Module: "celery.exceptions",
		Args: []any{fmt.Sprintf("Can't retry %s[%s] args:... kwargs:... (max retries %d exceeded)", name, id, max)}}
}

// toPyError maps any handler error to the exception reported to Python.
// taskCtx is the handler's context: a context error caused by the soft time
// limit becomes SoftTimeLimitExceeded.
func toPyError(err error, taskCtx context.Context) *PyError {
	var pe *PyError
	if errors.As(err, &pe) {
		return pe
	}
	if taskCtx != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		cause := context.Cause(taskCtx)
		if errors.As(cause, &pe) {
			return pe
		}
	}
	return &PyError{Type: "Exception", Module: "builtins", Args: []any{err.Error()}, Err: err}
}

// pyTraceback builds a Python-looking traceback string ending with the
// exception line, so tools that print result.traceback show something
// readable. frames are "where" lines (Go function names, file:line).
func pyTraceback(taskName string, pe *PyError, frames []string) string {
	var b strings.Builder
	b.WriteString("Traceback (most recent call last):\n")
	if len(frames) == 0 {
		fmt.Fprintf(&b, "  File \"omics-worker\", line 0, in %s\n", taskName)
	}
	for _, f := range frames {
		b.WriteString("  ")
		b.WriteString(f)
		b.WriteString("\n")
	}
	typ := pe.Type
	if m := pe.Module; m != "" && m != "builtins" {
		typ = m + "." + typ
	}
	msg := pe.message()
	if msg == "" {
		fmt.Fprintf(&b, "%s\n", typ)
	} else {
		fmt.Fprintf(&b, "%s: %s\n", typ, msg)
	}
	return b.String()
}

// RetryError is the outcome a handler returns to have its task retried
// (Celery's Task.retry): the runtime republishes the message with the same
// id, retries+1 and an ETA, stores RETRY, and acknowledges the original.
// Build it with Retry or RetryAt.
type RetryError struct {
	// Err is the exception recorded in the RETRY state (and in the FAILURE
	// when max retries are exceeded); nil records result null.
	Err error
	// Countdown delays the retry; used when ETA is nil. Zero means the
	// task's DefaultRetryDelay.
	Countdown time.Duration
	// ETA is an absolute time for the retry.
	ETA *time.Time
	// MaxRetries overrides the task's MaxRetries when non-nil (negative =
	// unlimited).
	MaxRetries *int
}

// Retry returns the outcome "retry this task after countdown because of
// err" (countdown 0 = the task's default retry delay, 180 s by default).
func Retry(err error, countdown time.Duration) *RetryError {
	return &RetryError{Err: err, Countdown: countdown}
}

// RetryAt retries at an absolute time.
func RetryAt(err error, eta time.Time) *RetryError {
	return &RetryError{Err: err, ETA: &eta}
}

func (r *RetryError) Error() string {
	when := "in " + r.Countdown.String()
	if r.ETA != nil {
		when = "at " + r.ETA.UTC().Format(time.RFC3339)
	}
	if r.Err == nil {
		return "Retry " + when
	}
	return "Retry " + when + ": " + r.Err.Error()
}

// Unwrap returns the reason of the retry.
func (r *RetryError) Unwrap() error { return r.Err }
