package worker

// Hook points for remote control, events and monitoring (worker/control,
// worker/events, worker/metrics). The runtime calls the hook* methods at
// fixed places; everything else in this file is the API those packages use.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// Clock is a Lamport clock (kombu LamportClock): one per worker, shared by
// events, remote control and mingle. Safe for concurrent use.
type Clock struct{ v atomic.Int64 }

// Value is the current value.
func (c *Clock) Value() int64 { return c.v.Load() }

// Forward increments the clock and returns the new value.
func (c *Clock) Forward() int64 { return c.v.Add(1) }

// Adjust sets the clock to max(own, other)+1 and returns it.
func (c *Clock) Adjust(other int64) int64 {
	for {
		cur := c.v.Load()
		next := max(cur, other) + 1
		if c.v.CompareAndSwap(cur, next) {
			return next
		}
	}
}

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

// TaskEvent is one step of a task's life, with Celery's event fields.
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
	// Fields are Celery's extra fields of that event type (uuid included),
	// Python repr strings where Celery sends reprs.
	Fields map[string]any
	// Runtime is the execution time (task-succeeded, task-failed).
	Runtime time.Duration
}

// Observer receives task events. ObserveTask is called synchronously on
// the worker's goroutines and must not block.
type Observer interface {
	ObserveTask(ev TaskEvent)
}

// ErrRevokedTerminated is the cancellation cause of a task's context when
// a remote `revoke --terminate` (or `terminate`) hits it. The runtime
// stores REVOKED (TaskRevokedError('terminated')) once the handler returns.
var ErrRevokedTerminated = &PyError{Type: "TaskRevokedError", Module: "celery.exceptions", Args: []any{"terminated"}}

// ext is the hook state of a Worker (field Worker.x); its zero value is
// ready.
type ext struct {
	once      sync.Once
	clock     Clock
	revoked   RevokedSet
	start     time.Time
	processed atomic.Int64

	mu        sync.Mutex
	observers []Observer
	queues    []string // nil: Config.Queues
	started   map[*job]time.Time
	outcomes  map[*job]outcome
	terminate map[string]int // task id -> signal number
	total     map[string]int64
	rates     map[string]*rateLimit
	rateText  map[string]string
	retire    int
	pool      *sync.WaitGroup
}

func (w *Worker) xinit() *ext {
	w.x.once.Do(func() {
		w.x.start = time.Now()
		w.x.started = map[*job]time.Time{}
		w.x.outcomes = map[*job]outcome{}
		w.x.terminate = map[string]int{}
		w.x.total = map[string]int64{}
		w.x.rates = map[string]*rateLimit{}
		w.x.rateText = map[string]string{}
	})
	return &w.x
}

// Clock returns the worker's Lamport clock.
func (w *Worker) Clock() *Clock { return &w.xinit().clock }

// Revoked returns the worker's revoked set.
func (w *Worker) Revoked() *RevokedSet { return &w.xinit().revoked }

// AddObserver registers o for task events. Call it before Run.
func (w *Worker) AddObserver(o Observer) {
	x := w.xinit()
	x.mu.Lock()
	x.observers = append(x.observers, o)
	x.mu.Unlock()
}

func (w *Worker) emit(ev TaskEvent) {
	x := w.xinit()
	x.mu.Lock()
	obs := x.observers
	x.mu.Unlock()
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

func isoOrNil(t *time.Time) any {
	if t == nil {
		return nil
	}
	return pyfmt.FormatISO(t.UTC())
}

func nilIfEmptyStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (w *Worker) taskEvent(j *job, typ string, fields map[string]any) TaskEvent {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["uuid"] = j.msg.ID
	ev := TaskEvent{Type: typ, ID: j.msg.ID, Name: taskDisplayName(j.msg), Queue: j.d.Queue, Fields: fields}
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
	msg := j.msg
	w.emit(w.taskEvent(j, EventTaskReceived, map[string]any{
		"name":      taskDisplayName(msg),
		"args":      msg.ArgsRepr,
		"kwargs":    msg.KwargsRepr,
		"root_id":   nilIfEmptyStr(msg.RootID),
		"parent_id": nilIfEmptyStr(msg.ParentID),
		"retries":   msg.Retries,
		"eta":       isoOrNil(msg.ETA),
		"expires":   isoOrNil(msg.Expires),
	}))
	if msg.ETA != nil && time.Until(*msg.ETA) > 0 {
		return false // ETA tasks bypass rate limits (a difference from Celery)
	}
	return w.holdForRate(j)
}

// discardRevoked settles j with REVOKED when its id is in the revoked set.
func (w *Worker) discardRevoked(ctx context.Context, j *job) bool {
	x := w.xinit()
	if !x.revoked.Contains(j.msg.ID) {
		return false
	}
	j.log.Info(fmt.Sprintf("Discarding revoked task: %s[%s]", j.msg.Task, j.msg.ID), "reason", "revoked")
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, revokedError("revoked").Info())
	}
	w.settleRevoked(ctx, j, m, false, nil)
	return true
}

// settleRevoked announces task-revoked and settles j with m.
func (w *Worker) settleRevoked(ctx context.Context, j *job, m *protocol.ResultMeta, terminated bool, signum any) {
	x := w.xinit()
	x.mu.Lock()
	x.outcomes[j] = outcome{err: errRevokedAnnounced}
	delete(x.terminate, j.msg.ID)
	x.mu.Unlock()
	w.emit(w.taskEvent(j, EventTaskRevoked, map[string]any{
		"terminated": terminated, "signum": signum, "expired": false,
	}))
	w.settle(ctx, j, m)
}

// errRevokedAnnounced marks a job whose task-revoked was already sent.
var errRevokedAnnounced = errors.New("revoked (announced)")

// hookStart runs when a pool goroutine takes j, before anything is
// stored: a revoked id is discarded, else the task counts as accepted
// (stats total, processed) and task-started is announced.
func (w *Worker) hookStart(ctx context.Context, j *job) bool {
	if w.discardRevoked(ctx, j) {
		return true
	}
	x := w.xinit()
	x.processed.Add(1)
	x.mu.Lock()
	x.started[j] = time.Now()
	x.total[j.msg.Task]++
	x.mu.Unlock()
	w.emit(w.taskEvent(j, EventTaskStarted, nil))
	return false
}

// hookCancelSet runs once j.cancel is set: a terminate that arrived while
// the task was starting takes effect now.
func (w *Worker) hookCancelSet(j *job) {
	x := w.xinit()
	x.mu.Lock()
	_, term := x.terminate[j.msg.ID]
	x.mu.Unlock()
	if term {
		w.mu.Lock()
		c := j.cancel
		w.mu.Unlock()
		if c != nil {
			c(ErrRevokedTerminated)
		}
	}
}

// hookFinish runs when the handler returned. It records the outcome for
// the final event and turns a terminated task into REVOKED; true means it
// settled j.
func (w *Worker) hookFinish(ctx context.Context, j *job, tctx context.Context, o outcome) bool {
	x := w.xinit()
	x.mu.Lock()
	x.outcomes[j] = o
	sig, term := x.terminate[j.msg.ID]
	delete(x.terminate, j.msg.ID)
	x.mu.Unlock()
	if !term || !errors.Is(context.Cause(tctx), ErrRevokedTerminated) || o.err == nil {
		// A handler that completed despite the terminate keeps its
		// SUCCESS: its work is done and consistent.
		return false
	}
	j.log.Info(fmt.Sprintf("Task %s[%s] terminated by remote revoke", j.msg.Task, j.msg.ID), "signum", sig)
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, ErrRevokedTerminated.Info())
	}
	w.settleRevoked(ctx, j, m, true, sig)
	return true
}

// hookSettle runs when j is settled with meta (nil: nothing stored): it
// announces the final task event and drops the per-job state.
func (w *Worker) hookSettle(j *job, meta *protocol.ResultMeta) {
	x := w.xinit()
	x.mu.Lock()
	begin, started := x.started[j]
	o, hasOutcome := x.outcomes[j]
	delete(x.started, j)
	delete(x.outcomes, j)
	x.mu.Unlock()
	if j.msg == nil || errors.Is(o.err, errRevokedAnnounced) {
		return
	}
	var runtime time.Duration
	if started {
		runtime = time.Since(begin)
	}
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
	var ev TaskEvent
	switch status {
	case protocol.StateSuccess:
		var result string
		if meta != nil {
			if raw, ok := meta.Result.(json.RawMessage); ok {
				result = reprJSON(raw)
			} else {
				result = protocol.SafeRepr(meta.Result, 0)
			}
		} else {
			result = protocol.SafeRepr(jsonRoundTrip(o.result), 0)
		}
		ev = w.taskEvent(j, EventTaskSucceeded, map[string]any{"result": result, "runtime": protocol.Float(runtime.Seconds())})
	case protocol.StateFailure, protocol.StateRetry:
		exc, tb := "", ""
		if meta != nil {
			if info, ok := meta.Result.(*protocol.ExceptionInfo); ok {
				exc = protocol.PyReprException(info)
			}
			if meta.Traceback != nil {
				tb = *meta.Traceback
			}
		}
		if exc == "" && o.err != nil {
			exc = protocol.PyReprException(toPyError(o.err, nil).Info())
		}
		if status == protocol.StateRetry {
			ev = w.taskEvent(j, EventTaskRetried, map[string]any{"exception": exc, "traceback": tb})
			break
		}
		if j.def == nil || !started { // NotRegistered and other rejections
			ev = w.taskEvent(j, EventTaskFailed, map[string]any{"exception": exc})
			break
		}
		ev = w.taskEvent(j, EventTaskFailed, map[string]any{"exception": exc, "traceback": tb})
	case protocol.StateRevoked:
		expired := false
		if info, ok := meta.Result.(*protocol.ExceptionInfo); ok && len(info.Message) == 1 && info.Message[0] == "expired" {
			expired = true
		}
		ev = w.taskEvent(j, EventTaskRevoked, map[string]any{"terminated": false, "signum": nil, "expired": expired})
	default:
		return
	}
	ev.Runtime = runtime
	w.emit(ev)
}

func reprJSON(raw json.RawMessage) string {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	return protocol.SafeRepr(v, 0)
}

func jsonRoundTrip(v any) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if dec.Decode(&out) != nil {
		return string(raw)
	}
	return out
}

// --- revocation ----------------------------------------------------------

// Revoke adds ids to the revoked set. With terminate, running tasks among
// them are cancelled (cause ErrRevokedTerminated) and reserved ones will
// be discarded; it returns the ids found here (running or reserved), in
// the order given.
func (w *Worker) Revoke(ids []string, terminate bool, signum int) []string {
	x := w.xinit()
	x.revoked.Add(ids...)
	if !terminate {
		return nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]bool{}
	var cancels []context.CancelCauseFunc
	w.mu.Lock()
	for j := range w.running {
		if j.msg != nil && want[j.msg.ID] {
			found[j.msg.ID] = true
			if j.cancel != nil {
				cancels = append(cancels, j.cancel)
			}
		}
	}
	for j := range w.held {
		if j.msg != nil && want[j.msg.ID] && j.state != stateDone {
			found[j.msg.ID] = true
		}
	}
	w.mu.Unlock()
	x.mu.Lock()
	for id := range found {
		x.terminate[id] = signum
	}
	x.mu.Unlock()
	for _, c := range cancels {
		c(ErrRevokedTerminated)
	}
	var out []string
	for _, id := range ids {
		if found[id] {
			out = append(out, id)
			delete(found, id)
		}
	}
	return out
}

// --- rate limits -----------------------------------------------------------

// ErrUnknownTask: the task name is not registered.
var ErrUnknownTask = errors.New("unknown task")

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
	x := w.xinit()
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
	x := w.xinit()
	x.mu.Lock()
	defer x.mu.Unlock()
	return maps.Clone(x.rateText)
}

// holdForRate delays j until its task's rate limit allows it; true means
// j waits in a timer (it keeps its prefetch slot, as in Celery).
func (w *Worker) holdForRate(j *job) bool {
	x := w.xinit()
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

// --- time limits -----------------------------------------------------------

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

// --- queues ----------------------------------------------------------------

// Queues returns the queues consumed now.
func (w *Worker) Queues() []string {
	x := w.xinit()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		return slices.Clone(w.cfg.Queues)
	}
	return slices.Clone(x.queues)
}

// AddQueue starts consuming queue (after binding it, like add_consumer);
// adding a consumed queue is a no-op.
func (w *Worker) AddQueue(ctx context.Context, queue string) error {
	if queue == "" {
		return errors.New("worker: empty queue name")
	}
	if err := w.broker.Bind(ctx, queue); err != nil {
		return fmt.Errorf("worker: bind queue %s: %w", queue, err)
	}
	x := w.xinit()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		x.queues = slices.Clone(w.cfg.Queues)
	}
	if !slices.Contains(x.queues, queue) {
		x.queues = append(x.queues, queue)
		w.log.Info("Started consuming from " + queue)
	}
	return nil
}

// CancelQueue stops consuming queue; it reports whether it was consumed.
func (w *Worker) CancelQueue(queue string) bool {
	x := w.xinit()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		x.queues = slices.Clone(w.cfg.Queues)
	}
	i := slices.Index(x.queues, queue)
	if i < 0 {
		return false
	}
	x.queues = slices.Delete(x.queues, i, i+1)
	w.log.Info("No longer consuming from " + queue)
	return true
}

// --- pool --------------------------------------------------------------------

// ErrNotRunning: the pool cannot be resized before Run started consuming
// or after shutdown began.
var ErrNotRunning = errors.New("worker: not running")

func (w *Worker) hookPool(pool *sync.WaitGroup) {
	x := w.xinit()
	x.mu.Lock()
	x.pool = pool
	x.mu.Unlock()
}

// Concurrency is the current pool size.
func (w *Worker) Concurrency() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cfg.Concurrency
}

// PoolGrow adds n pool slots (and raises the prefetch window with them).
func (w *Worker) PoolGrow(n int) error {
	if n <= 0 {
		return nil
	}
	x := w.xinit()
	x.mu.Lock()
	pool := x.pool
	x.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if pool == nil || w.stopping {
		return ErrNotRunning
	}
	w.cfg.Concurrency += n
	x.mu.Lock()
	cancelRetire := min(x.retire, n)
	x.retire -= cancelRetire
	x.mu.Unlock()
	for range n - cancelRetire {
		pool.Go(func() { w.poolLoop() })
	}
	select {
	case w.windowCh <- struct{}{}:
	default:
	}
	return nil
}

// PoolShrink removes n pool slots (never below 1); idle goroutines leave
// after their next task.
func (w *Worker) PoolShrink(n int) error {
	if n <= 0 {
		return nil
	}
	x := w.xinit()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping {
		return ErrNotRunning
	}
	n = min(n, w.cfg.Concurrency-1)
	if n <= 0 {
		return errors.New("worker: the pool cannot shrink below 1")
	}
	w.cfg.Concurrency -= n
	x.mu.Lock()
	x.retire += n
	x.mu.Unlock()
	return nil
}

// hookRetire reports whether the calling pool goroutine should leave.
func (w *Worker) hookRetire() bool {
	x := w.xinit()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.retire > 0 {
		x.retire--
		return true
	}
	return false
}
