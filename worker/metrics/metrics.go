// Package metrics serves the worker's Prometheus metrics (/metrics), a
// liveness probe (/healthz) and a readiness probe (/readyz).
//
// The exposition is prometheus/client_golang's: a private registry holds
// the worker's collectors (omics_worker_*) and the standard Go runtime
// (go_*) and process (process_*) collectors, served by promhttp.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/omicsomics/omics-worker/worker"
)

// Source is what the collector reads from the worker (*worker.Worker).
type Source interface {
	Hostname() string
	Stats() worker.Stats
	Queues() []string
}

// Broker gives the Redis-side gauges.
type Broker interface {
	// QueueLengths returns LLEN of every priority sub-list of queue, keyed
	// by priority step (0, 3, 6, 9).
	QueueLengths(ctx context.Context, queue string) (map[int]int, error)
	// UnackedCount is HLEN unacked.
	UnackedCount(ctx context.Context) (int, error)
	// Ping checks the connection.
	Ping(ctx context.Context) error
}

// Config configures a Collector; zero values mean the defaults.
type Config struct {
	// Version is reported in omics_worker_info.
	Version string
	// Buckets are the runtime histogram's upper bounds in seconds (sorted
	// and de-duplicated by New).
	Buckets []float64
	// Ready reports whether the worker consumes (readyz); nil = always.
	Ready func() bool
	// ProbeTimeout bounds the Redis calls of one scrape. Default 2 s.
	ProbeTimeout time.Duration
	// Logger; nil drops logs.
	Logger *slog.Logger
}

// DefaultBuckets suit tasks from milliseconds to an hour.
var DefaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// Collector counts task events (it is a worker.Observer and a
// worker.RejectObserver) and Redis errors, and serves them with the
// worker's state, the Redis gauges and the Go and process collectors.
type Collector struct {
	cfg Config
	src Source
	br  Broker
	log *slog.Logger
	reg *prometheus.Registry

	events   map[string]*prometheus.CounterVec // event type -> counter by task
	rejected *prometheus.CounterVec            // by reason
	runtime  *prometheus.HistogramVec          // by task
	redisErr *prometheus.CounterVec            // by op
}

// UnregisteredLabel is the task label of every task name the worker does
// not implement: the names come from the messages, so each one getting
// its own series would let any client grow /metrics without bound.
const UnregisteredLabel = "unregistered"

// MaxLabelLength bounds a label value in bytes (longer values are cut at
// a UTF-8 boundary and end with "...").
const MaxLabelLength = 200

// rejectReasons are the reason label values of
// omics_worker_tasks_rejected_total, all exported from start.
var rejectReasons = []string{worker.RejectContentDisallowed, worker.RejectInvalid, worker.RejectTooDeep,
	worker.RejectTooLarge, worker.RejectUndecodable, worker.RejectUnknown, worker.RejectUnregistered}

// otherReason labels a reason outside rejectReasons (none today).
const otherReason = "other"

// unregisteredHelp ends the help of every per-task counter.
const unregisteredHelp = ` Task names the worker does not implement share task="unregistered".`

// eventCounters are the per-task counters, by event type.
var eventCounters = []struct{ event, name, help string }{
	{worker.EventTaskReceived, "omics_worker_tasks_received_total", "Task messages received."},
	{worker.EventTaskSucceeded, "omics_worker_tasks_succeeded_total", "Tasks that succeeded."},
	{worker.EventTaskFailed, "omics_worker_tasks_failed_total", "Tasks that failed."},
	{worker.EventTaskRetried, "omics_worker_tasks_retried_total", "Tasks that asked for a retry."},
	{worker.EventTaskRevoked, "omics_worker_tasks_revoked_total", "Tasks revoked (revoke, terminate, expired)."},
}

// New builds a collector and its registry; br may be nil (no Redis
// gauges).
func New(cfg Config, src Source, br Broker) *Collector {
	cfg.Buckets = buckets(cfg.Buckets)
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{cfg: cfg, src: src, br: br, log: cfg.Logger, reg: prometheus.NewRegistry(),
		events: make(map[string]*prometheus.CounterVec, len(eventCounters))}
	for _, e := range eventCounters {
		c.events[e.event] = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: e.name, Help: e.help + unregisteredHelp}, []string{"task"})
		c.reg.MustRegister(c.events[e.event])
	}
	c.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omics_worker_tasks_rejected_total",
		Help: "Task messages rejected without running, by reason."}, []string{"reason"})
	for _, r := range rejectReasons {
		c.rejected.WithLabelValues(r)
	}
	c.runtime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "omics_worker_task_runtime_seconds",
		Help: "Execution time of finished tasks.", Buckets: cfg.Buckets}, []string{"task"})
	// redisErr is collected by the state collector, after the scrape's
	// own Redis calls, so that their failures show in the same scrape.
	c.redisErr = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "omics_worker_redis_errors_total",
		Help: "Failed Redis operations, by operation."}, []string{"op"})
	c.reg.MustRegister(c.rejected, c.runtime, stateCollector{c},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return c
}

// buckets returns b (or DefaultBuckets) sorted and without duplicates, as
// client_golang requires.
func buckets(b []float64) []float64 {
	if len(b) == 0 {
		return DefaultBuckets
	}
	b = slices.Clone(b)
	slices.Sort(b)
	return slices.Compact(b)
}

// taskLabel is the bounded task label of ev: its registered name, or
// UnregisteredLabel.
func taskLabel(ev worker.TaskEvent) string {
	if ev.Task == "" {
		return UnregisteredLabel
	}
	return labelValue(ev.Task)
}

// labelValue makes s a valid label value: invalid UTF-8 replaced (client
// libraries refuse it), cut to MaxLabelLength.
func labelValue(s string) string {
	return capLabel(strings.ToValidUTF8(s, "\uFFFD"))
}

// capLabel cuts s to MaxLabelLength bytes at a rune boundary.
func capLabel(s string) string {
	if len(s) <= MaxLabelLength {
		return s
	}
	cut := MaxLabelLength - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// ObserveReject implements worker.RejectObserver: one message rejected
// without running, for reason.
func (c *Collector) ObserveReject(reason string) {
	if !slices.Contains(rejectReasons, reason) {
		reason = otherReason
	}
	c.rejected.WithLabelValues(reason).Inc()
}

// ObserveTask implements worker.Observer.
func (c *Collector) ObserveTask(ev worker.TaskEvent) {
	vec, ok := c.events[ev.Type]
	if !ok {
		return
	}
	task := taskLabel(ev)
	vec.WithLabelValues(task).Inc()
	if ev.Type == worker.EventTaskSucceeded || (ev.Type == worker.EventTaskFailed && ev.Runtime > 0) {
		c.runtime.WithLabelValues(task).Observe(ev.Runtime.Seconds())
	}
}

// RedisError counts one failed Redis operation (op: "fetch", "ack",
// "store", "publish", ...).
func (c *Collector) RedisError(op string) {
	c.redisErr.WithLabelValues(labelValue(op)).Inc()
}

// Handler serves /metrics, /healthz and /readyz.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(c.reg, promhttp.HandlerOpts{
		// A failing collector (say /proc unreadable) costs its own
		// metrics, not the scrape.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      errorLog{c.log},
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	return mux
}

// errorLog adapts slog to promhttp.Logger.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

// Ready reports nil when Redis answers PING and the worker consumes.
func (c *Collector) Ready(ctx context.Context) error {
	if c.cfg.Ready != nil && !c.cfg.Ready() {
		return fmt.Errorf("worker is not consuming")
	}
	if c.br != nil {
		ctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
		defer cancel()
		if err := c.br.Ping(ctx); err != nil {
			c.RedisError("ping")
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}
