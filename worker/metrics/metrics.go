// Package metrics serves the worker's Prometheus text exposition
// (/metrics), a liveness probe (/healthz) and a readiness probe (/readyz).
// The exposition format (version 0.0.4) is written by hand: no client
// library, no dependencies.
package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	// Buckets are the runtime histogram's upper bounds in seconds.
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

type histogram struct {
	counts []uint64 // per bucket (not cumulative)
	sum    float64
	count  uint64
}

// Collector counts task events (it is a worker.Observer) and Redis errors,
// and renders the exposition.
type Collector struct {
	cfg Config
	src Source
	br  Broker
	log *slog.Logger

	mu       sync.Mutex
	counters map[string]map[string]float64 // metric -> task -> value
	hist     map[string]*histogram
	redisErr map[string]float64
	rejected map[string]float64 // reason -> messages
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

// New builds a collector; br may be nil (no Redis gauges).
func New(cfg Config, src Source, br Broker) *Collector {
	if len(cfg.Buckets) == 0 {
		cfg.Buckets = DefaultBuckets
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{cfg: cfg, src: src, br: br, log: cfg.Logger,
		counters: map[string]map[string]float64{}, hist: map[string]*histogram{}, redisErr: map[string]float64{},
		rejected: map[string]float64{}}
}

var eventCounter = map[string]string{
	worker.EventTaskReceived:  "omics_worker_tasks_received_total",
	worker.EventTaskSucceeded: "omics_worker_tasks_succeeded_total",
	worker.EventTaskFailed:    "omics_worker_tasks_failed_total",
	worker.EventTaskRetried:   "omics_worker_tasks_retried_total",
	worker.EventTaskRevoked:   "omics_worker_tasks_revoked_total",
}

// taskLabel is the bounded task label of ev: its registered name, or
// UnregisteredLabel.
func taskLabel(ev worker.TaskEvent) string {
	if ev.Task == "" {
		return UnregisteredLabel
	}
	return capLabel(ev.Task)
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
	c.mu.Lock()
	c.rejected[reason]++
	c.mu.Unlock()
}

// ObserveTask implements worker.Observer.
func (c *Collector) ObserveTask(ev worker.TaskEvent) {
	name, ok := eventCounter[ev.Type]
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counters[name]
	if m == nil {
		m = map[string]float64{}
		c.counters[name] = m
	}
	task := taskLabel(ev)
	m[task]++
	if ev.Type == worker.EventTaskSucceeded || ev.Type == worker.EventTaskFailed {
		if ev.Runtime > 0 || ev.Type == worker.EventTaskSucceeded {
			h := c.hist[task]
			if h == nil {
				h = &histogram{counts: make([]uint64, len(c.cfg.Buckets))}
				c.hist[task] = h
			}
			s := ev.Runtime.Seconds()
			for i, b := range c.cfg.Buckets {
				if s <= b {
					h.counts[i]++
					break
				}
			}
			h.sum += s
			h.count++
		}
	}
}

// RedisError counts one failed Redis operation (op: "fetch", "ack",
// "store", "publish", ...).
func (c *Collector) RedisError(op string) {
	c.mu.Lock()
	c.redisErr[op]++
	c.mu.Unlock()
}

// Handler serves /metrics, /healthz and /readyz.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		c.Write(r.Context(), w)
	})
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

// Write renders the exposition.
func (c *Collector) Write(ctx context.Context, w io.Writer) {
	var b strings.Builder
	st := c.src.Stats()
	host := c.src.Hostname()

	help(&b, "omics_worker_info", "gauge", "Worker identity (always 1).")
	fmt.Fprintf(&b, "omics_worker_info{hostname=%s,version=%s} 1\n", label(host), label(c.cfg.Version))
	gauge(&b, "omics_worker_up_seconds", "Seconds since the worker started.", st.Uptime.Seconds())
	gauge(&b, "omics_worker_concurrency", "Pool size (tasks run at once).", float64(st.Concurrency))
	gauge(&b, "omics_worker_prefetch_count", "Prefetch window (0 = unlimited).", float64(st.PrefetchCount))
	gauge(&b, "omics_worker_tasks_active", "Tasks executing now.", float64(st.Active))
	help(&b, "omics_worker_tasks_processed_total", "counter", "Tasks accepted (started) since start.")
	fmt.Fprintf(&b, "omics_worker_tasks_processed_total %d\n", st.Processed)

	c.mu.Lock()
	names := []string{"omics_worker_tasks_received_total", "omics_worker_tasks_succeeded_total",
		"omics_worker_tasks_failed_total", "omics_worker_tasks_retried_total",
		"omics_worker_tasks_revoked_total"}
	helps := []string{"Task messages received.", "Tasks that succeeded.", "Tasks that failed.",
		"Tasks that asked for a retry.", "Tasks revoked (revoke, terminate, expired)."}
	for i, n := range names {
		help(&b, n, "counter", helps[i]+` Task names the worker does not implement share task="unregistered".`)
		for _, task := range sortedKeys(c.counters[n]) {
			fmt.Fprintf(&b, "%s{task=%s} %s\n", n, label(task), num(c.counters[n][task]))
		}
	}
	help(&b, "omics_worker_tasks_rejected_total", "counter", "Task messages rejected without running, by reason.")
	reasons := append([]string(nil), rejectReasons...)
	if _, ok := c.rejected[otherReason]; ok {
		reasons = append(reasons, otherReason)
	}
	for _, r := range reasons {
		fmt.Fprintf(&b, "omics_worker_tasks_rejected_total{reason=%s} %s\n", label(r), num(c.rejected[r]))
	}
	help(&b, "omics_worker_task_runtime_seconds", "histogram", "Execution time of finished tasks.")
	hnames := make([]string, 0, len(c.hist))
	for k := range c.hist {
		hnames = append(hnames, k)
	}
	sort.Strings(hnames)
	for _, task := range hnames {
		h := c.hist[task]
		var cum uint64
		for i, ub := range c.cfg.Buckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "omics_worker_task_runtime_seconds_bucket{task=%s,le=%s} %d\n", label(task), label(num(ub)), cum)
		}
		fmt.Fprintf(&b, "omics_worker_task_runtime_seconds_bucket{task=%s,le=\"+Inf\"} %d\n", label(task), h.count)
		fmt.Fprintf(&b, "omics_worker_task_runtime_seconds_sum{task=%s} %s\n", label(task), num(h.sum))
		fmt.Fprintf(&b, "omics_worker_task_runtime_seconds_count{task=%s} %d\n", label(task), h.count)
	}
	redisErr := make(map[string]float64, len(c.redisErr))
	for k, v := range c.redisErr {
		redisErr[k] = v
	}
	c.mu.Unlock()

	if c.br != nil {
		pctx, cancel := context.WithTimeout(ctx, c.cfg.ProbeTimeout)
		help(&b, "omics_worker_queue_length", "gauge", "Messages waiting in each consumed queue, per priority sub-queue (step 0 = highest).")
		for _, q := range c.src.Queues() {
			lens, err := c.br.QueueLengths(pctx, q)
			if err != nil {
				c.RedisError("llen")
				redisErr["llen"]++
				continue
			}
			steps := make([]int, 0, len(lens))
			for p := range lens {
				steps = append(steps, p)
			}
			sort.Ints(steps)
			for _, p := range steps {
				fmt.Fprintf(&b, "omics_worker_queue_length{queue=%s,priority=\"%d\"} %d\n", label(q), p, lens[p])
			}
		}
		help(&b, "omics_worker_unacked_messages", "gauge", "Messages delivered to any consumer of this Redis database and not acknowledged (HLEN unacked).")
		if n, err := c.br.UnackedCount(pctx); err == nil {
			fmt.Fprintf(&b, "omics_worker_unacked_messages %d\n", n)
		} else {
			c.RedisError("hlen")
			redisErr["hlen"]++
		}
		cancel()
	}
	help(&b, "omics_worker_redis_errors_total", "counter", "Failed Redis operations, by operation.")
	for _, op := range sortedKeys(redisErr) {
		fmt.Fprintf(&b, "omics_worker_redis_errors_total{op=%s} %s\n", label(op), num(redisErr[op]))
	}
	io.WriteString(w, b.String())
}

func help(b *strings.Builder, name, typ, text string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, typ)
}

func gauge(b *strings.Builder, name, text string, v float64) {
	help(b, name, "gauge", text)
	fmt.Fprintf(b, "%s %s\n", name, num(v))
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// labelEscaper escapes \, " and newline in label values.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// label quotes a label value, cut to MaxLabelLength bytes.
func label(s string) string {
	return `"` + labelEscaper.Replace(capLabel(s)) + `"`
}

func num(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
