package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// ErrUnknownTask: the task name is not registered.
var ErrUnknownTask = errors.New("unknown task")

// Handler runs one task. It returns the task's result (any JSON-encodable
// value, stored as SUCCESS) or an error: a *RetryError (see Retry) retries
// the task, a *PyError chooses the Python exception of the FAILURE, any
// other error becomes FAILURE builtins.Exception(err.Error()). Handlers
// must honour ctx: it is cancelled at the soft time limit (cause
// ErrSoftTimeLimitExceeded), at the hard time limit and at shutdown.
type Handler func(ctx context.Context, t *Task) (any, error)

// TaskOptions are a task's Celery attributes. The zero value means the
// worker's defaults.
type TaskOptions struct {
	// Params are the names of the Python function's parameters in order;
	// when set, positional args are bound to them for Task.Arg and the
	// typed getters, and calls with too many positional args or unknown
	// keyword args fail with TypeError as a Python function would.
	Params []string
	// VarArgs/VarKwargs accept extra positional/keyword args (Python's
	// *args / **kwargs) when Params is set.
	VarArgs, VarKwargs bool
	// IgnoreResult does not store SUCCESS (nor STARTED).
	IgnoreResult bool
	// DisableTrackStarted does not store STARTED for this task.
	DisableTrackStarted bool
	// TimeLimit / SoftTimeLimit are the task's own limits (Celery task
	// attributes): they override the worker's Config (a message's
	// timelimit header still wins). 0 = the worker's.
	TimeLimit, SoftTimeLimit time.Duration
	// AppTimeLimit / AppSoftTimeLimit are the limits the task's Celery app
	// sets in its configuration (task_time_limit, task_soft_time_limit):
	// used only when neither the message, the task's own limits nor the
	// worker's Config (--time-limit) give one, since `celery worker
	// --time-limit` overrides the app's configuration. 0 = none.
	AppTimeLimit, AppSoftTimeLimit time.Duration
	// MaxRetries bounds Retry: 0 means Celery's default 3; negative means
	// unlimited.
	MaxRetries int
	// DefaultRetryDelay is the countdown of Retry(err, 0). Default 180 s.
	DefaultRetryDelay time.Duration
	// AutoRetry retries errors marked with Transient automatically, with
	// exponential backoff and jitter, up to MaxRetries (autoretry.go).
	AutoRetry AutoRetry
	// FairnessKey returns the key Config.Fairness limits per (e.g. the
	// uploading user); nil = the task is never held back (fairness.go).
	FairnessKey KeyFunc
}

type taskDef struct {
	name    string
	handler Handler
	opts    TaskOptions
}

func (d *taskDef) maxRetries() int {
	switch {
	case d.opts.MaxRetries == 0:
		return 3
	case d.opts.MaxRetries < 0:
		return -1
	}
	return d.opts.MaxRetries
}

func (d *taskDef) retryDelay() time.Duration {
	if d.opts.DefaultRetryDelay > 0 {
		return d.opts.DefaultRetryDelay
	}
	return 180 * time.Second
}

// Registry maps Celery task names to Go handlers. It is safe for concurrent
// use; the zero value is empty and ready.
type Registry struct {
	mu    sync.RWMutex
	tasks map[string]*taskDef
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

// ErrDuplicateTask is returned when a name is registered twice.
var ErrDuplicateTask = errors.New("task already registered")

// Register adds a handler under the Celery task name (e.g.
// "app.tasks.file_tasks.process_file_async").
func (r *Registry) Register(name string, h Handler, opts TaskOptions) error {
	if name == "" || h == nil {
		return fmt.Errorf("register %q: empty name or nil handler", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tasks == nil {
		r.tasks = make(map[string]*taskDef)
	}
	if _, ok := r.tasks[name]; ok {
		return fmt.Errorf("register %q: %w", name, ErrDuplicateTask)
	}
	r.tasks[name] = &taskDef{name: name, handler: h, opts: opts}
	return nil
}

func (r *Registry) lookup(name string) *taskDef {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tasks[name]
}

// Options returns the options a task was registered with.
func (r *Registry) Options(name string) (TaskOptions, bool) {
	d := r.lookup(name)
	if d == nil {
		return TaskOptions{}, false
	}
	return d.opts, true
}

// Names lists the registered task names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.tasks))
	for n := range r.tasks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
