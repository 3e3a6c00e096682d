package worker

import (
	"slices"
	"sort"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// RequestInfo is Celery's Request.info() (spec §4.5.3), as returned by the
// active, reserved, scheduled and query_task inspect commands.
type RequestInfo struct {
	ID   string
	Name string // shadow or task name
	Type string // task name
	// Args/Kwargs are the call arguments; ArgsRepr/KwargsRepr their reprs
	// (used when "safe" is requested).
	Args       []any
	Kwargs     map[string]any
	ArgsRepr   string
	KwargsRepr string
	Hostname   string
	// TimeStart is when execution started (zero if not started).
	TimeStart time.Time
	// Acknowledged: the message was acked (early ack) or rejected.
	Acknowledged bool
	Exchange     string
	RoutingKey   string
	Priority     int
	Redelivered  bool
	// WorkerPid is the executing process (0 if not started).
	WorkerPid int
	// ETA is set for scheduled requests.
	ETA *time.Time
	// State is "active", "reserved" or "scheduled".
	State string
}

// Map renders the info as Celery's dict; safe puts the repr strings in
// args/kwargs. Redelivered is null when false (celery 5.2 behaviour).
func (r RequestInfo) Map(safe bool) map[string]any {
	var args, kwargs any = r.Args, r.Kwargs
	if r.Args == nil {
		args = []any{}
	}
	if r.Kwargs == nil {
		kwargs = map[string]any{}
	}
	if safe {
		args, kwargs = r.ArgsRepr, r.KwargsRepr
	}
	var ts, pid any
	if !r.TimeStart.IsZero() {
		ts = protocol.Float(float64(r.TimeStart.UnixMicro()) / 1e6)
		pid = r.WorkerPid
	}
	var redelivered any
	if r.Redelivered {
		redelivered = true
	}
	return map[string]any{
		"id":           r.ID,
		"name":         r.Name,
		"args":         args,
		"kwargs":       kwargs,
		"type":         r.Type,
		"hostname":     r.Hostname,
		"time_start":   ts,
		"acknowledged": r.Acknowledged,
		"delivery_info": map[string]any{
			"exchange":    r.Exchange,
			"routing_key": r.RoutingKey,
			"priority":    r.Priority,
			"redelivered": redelivered,
		},
		"worker_pid": pid,
	}
}

// Requests returns the tasks this worker holds: running ("active"),
// waiting for a pool slot ("reserved") and waiting for their ETA
// ("scheduled"), each list ordered by task id for stable output.
func (w *Worker) Requests() (active, reserved, scheduled []RequestInfo) {
	type item struct {
		j     *job
		state string
	}
	var items []item
	w.mu.Lock()
	for j := range w.running {
		if j.msg != nil {
			items = append(items, item{j, "active"})
		}
	}
	for j := range w.held {
		if j.msg == nil || j.def == nil {
			continue
		}
		switch j.state {
		case stateQueued:
			items = append(items, item{j, "reserved"})
		case stateETA:
			items = append(items, item{j, "scheduled"})
		}
	}
	acked := make(map[*job]bool, len(items))
	for _, it := range items {
		acked[it.j] = it.j.acked
	}
	w.mu.Unlock()

	x := &w.mon
	x.mu.Lock()
	starts := make(map[*job]time.Time, len(items))
	for _, it := range items {
		if t, ok := x.started[it.j]; ok {
			starts[it.j] = t
		}
	}
	x.mu.Unlock()

	seen := map[*job]bool{}
	for _, it := range items {
		if seen[it.j] {
			continue
		}
		seen[it.j] = true
		m, d := it.j.msg, it.j.d
		info := RequestInfo{
			ID: m.ID, Name: taskDisplayName(m), Type: m.Task,
			Args: m.Args, Kwargs: m.Kwargs, ArgsRepr: m.ArgsRepr, KwargsRepr: m.KwargsRepr,
			Hostname: w.cfg.Hostname, Acknowledged: acked[it.j], State: it.state,
		}
		if d.Envelope != nil {
			p := d.Envelope.Properties
			info.Exchange, info.RoutingKey = p.DeliveryInfo.Exchange, p.DeliveryInfo.RoutingKey
			info.Priority, info.Redelivered = p.Priority, p.DeliveryInfo.Redelivered
		}
		if t, ok := starts[it.j]; ok && it.state == "active" {
			info.TimeStart, info.WorkerPid = t, w.cfg.Pid
		}
		if it.state == "scheduled" {
			info.ETA = m.ETA
		}
		switch it.state {
		case "active":
			active = append(active, info)
		case "reserved":
			reserved = append(reserved, info)
		default:
			scheduled = append(scheduled, info)
		}
	}
	for _, l := range [][]RequestInfo{active, reserved, scheduled} {
		sort.Slice(l, func(i, k int) bool { return l[i].ID < l[k].ID })
	}
	return active, reserved, scheduled
}

// Stats are the worker's counters for `inspect stats` and heartbeats.
type Stats struct {
	// Total counts accepted (started) tasks per task name.
	Total map[string]int64
	// Processed is the sum of Total (heartbeat "processed").
	Processed int64
	// Active is the number of running tasks.
	Active int
	// Uptime is the time since the worker was built.
	Uptime time.Duration
	// Concurrency is the current pool size; PrefetchCount the prefetch
	// window (0 = unlimited).
	Concurrency, PrefetchCount int
	// SoftTimeLimit, TimeLimit are the worker's defaults.
	SoftTimeLimit, TimeLimit time.Duration
	// Pid is the process id; Hostname the node name.
	Pid      int
	Hostname string
}

// Stats returns the current counters.
func (w *Worker) Stats() Stats {
	x := &w.mon
	w.mu.Lock()
	active := len(w.running)
	conc := w.cfg.Concurrency
	prefetch := w.cfg.prefetchLimit()
	w.mu.Unlock()
	x.mu.Lock()
	total := make(map[string]int64, len(x.total))
	for k, v := range x.total {
		total[k] = v
	}
	x.mu.Unlock()
	return Stats{
		Total: total, Processed: x.processed.Load(), Active: active,
		Uptime: time.Since(x.start), Concurrency: conc, PrefetchCount: prefetch,
		SoftTimeLimit: max(w.cfg.SoftTimeLimit, 0), TimeLimit: max(w.cfg.TimeLimit, 0),
		Pid: w.cfg.Pid, Hostname: w.cfg.Hostname,
	}
}

// TaskInfo describes a registered task for `inspect registered`.
type TaskInfo struct {
	Name string
	// RateLimit is the raw rate limit set remotely ("" = none).
	RateLimit string
	// SoftTimeLimit and TimeLimit are the task's own limits (0 = none).
	SoftTimeLimit, TimeLimit time.Duration
}

// Tasks lists the registered tasks, sorted by name.
func (w *Worker) Tasks() []TaskInfo {
	rates := w.RateLimits()
	w.reg.mu.RLock()
	out := make([]TaskInfo, 0, len(w.reg.tasks))
	for name, d := range w.reg.tasks {
		out = append(out, TaskInfo{Name: name, RateLimit: rates[name],
			SoftTimeLimit: d.opts.SoftTimeLimit, TimeLimit: d.opts.TimeLimit})
	}
	w.reg.mu.RUnlock()
	slices.SortFunc(out, func(a, b TaskInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Hostname is the worker's node name.
func (w *Worker) Hostname() string { return w.cfg.Hostname }

// Stopping reports whether a shutdown has begun.
func (w *Worker) Stopping() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stopping
}
