// Package events is the worker's Celery event dispatcher (spec §5):
// worker-online / worker-heartbeat / worker-offline always, task events
// when the "task" group is enabled (-E or the enable_events command).
// Events are Redis pub/sub messages on /<db>.celeryev/<routing key>; the
// dispatcher publishes from one goroutine so the runtime never blocks.
package events

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// Publisher publishes one payload on a pub/sub channel.
type Publisher interface {
	PublishFanout(ctx context.Context, channel string, payload []byte) error
}

// Source is what the dispatcher reads from the worker (*worker.Worker).
type Source interface {
	Hostname() string
	Clock() *worker.Clock
	Stats() worker.Stats
}

// Config configures a Dispatcher; zero values mean the defaults.
type Config struct {
	// Names are the broker's channel names.
	Names protocol.Names
	// TaskEvents enables every event group at start (celery -E).
	TaskEvents bool
	// HeartbeatInterval is the heartbeat period, sent as "freq".
	// Default 2 s (Celery's).
	HeartbeatInterval time.Duration
	// SWIdent, SWVer, SWSys identify the software. Defaults
	// "omics-worker", "dev", the OS name as Python's platform.system().
	SWIdent, SWVer, SWSys string
	// QueueSize bounds the events waiting to be published (default 4096);
	// when full, new events are dropped and counted.
	QueueSize int
	// OnPublishError is called for every failed publish (metrics).
	OnPublishError func(error)
	// Logger; nil drops logs.
	Logger *slog.Logger
}

// Dispatcher sends worker and task events. It implements worker.Observer
// and the control package's Events interface.
type Dispatcher struct {
	cfg   Config
	src   Source
	pub   Publisher
	log   *slog.Logger
	queue chan map[string]any

	mu     sync.Mutex
	groups map[string]bool // empty = all groups (Celery's semantics)

	dropped atomic.Int64
}

// New builds a dispatcher.
func New(cfg Config, src Source, pub Publisher) *Dispatcher {
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 2 * time.Second
	}
	if cfg.SWIdent == "" {
		cfg.SWIdent = "omics-worker"
	}
	if cfg.SWVer == "" {
		cfg.SWVer = "dev"
	}
	if cfg.SWSys == "" {
		cfg.SWSys = PlatformSystem()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{cfg: cfg, src: src, pub: pub, log: cfg.Logger,
		queue: make(chan map[string]any, cfg.QueueSize), groups: map[string]bool{}}
	if !cfg.TaskEvents {
		d.groups["worker"] = true
	}
	return d
}

// PlatformSystem is Python's platform.system() for this OS.
func PlatformSystem() string {
	switch runtime.GOOS {
	case "linux":
		return "Linux"
	case "darwin":
		return "Darwin"
	case "windows":
		return "Windows"
	case "freebsd":
		return "FreeBSD"
	}
	return runtime.GOOS
}

// EnableTaskEvents adds the "task" group (enable_events); it reports
// whether anything changed. With every group enabled (-E) it changes
// nothing, as in Celery.
func (d *Dispatcher) EnableTaskEvents() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.groups) > 0 && !d.groups["task"] {
		d.groups["task"] = true
		return true
	}
	return false
}

// DisableTaskEvents removes the "task" group (disable_events); false if
// it was not in the set (so a -E worker keeps sending, as in Celery).
func (d *Dispatcher) DisableTaskEvents() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.groups["task"] {
		delete(d.groups, "task")
		return true
	}
	return false
}

// TaskEventsEnabled reports whether task events are sent now.
func (d *Dispatcher) TaskEventsEnabled() bool { return d.enabled("task") }

func (d *Dispatcher) enabled(group string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.groups) == 0 || d.groups[group]
}

// Dropped is the number of events dropped because the queue was full.
func (d *Dispatcher) Dropped() int64 { return d.dropped.Load() }

// ObserveTask implements worker.Observer: when task events are enabled,
// the event's Celery fields are formatted (TaskFields) and queued; else it
// costs nothing.
func (d *Dispatcher) ObserveTask(ev worker.TaskEvent) {
	if !d.enabled("task") {
		return
	}
	f := TaskFields(ev)
	if f == nil {
		return
	}
	f["type"] = ev.Type
	d.enqueue(f)
}

func (d *Dispatcher) enqueue(f map[string]any) {
	select {
	case d.queue <- f:
	default:
		if d.dropped.Add(1)%100 == 1 {
			d.log.Warn("events: publish queue full; events dropped", "dropped", d.dropped.Load())
		}
	}
}

// Send queues an arbitrary event (fields must include "type").
func (d *Dispatcher) Send(fields map[string]any) { d.enqueue(fields) }

// HeartbeatNow queues a worker-heartbeat with freq 5 and the sw_* fields
// only (the remote `heartbeat` command).
func (d *Dispatcher) HeartbeatNow() {
	d.enqueue(map[string]any{"type": "worker-heartbeat", "freq": 5,
		"sw_ident": d.cfg.SWIdent, "sw_ver": d.cfg.SWVer, "sw_sys": d.cfg.SWSys})
}

// workerFields are the fields of worker-online/heartbeat/offline.
func (d *Dispatcher) workerFields(typ string) map[string]any {
	st := d.src.Stats()
	return map[string]any{
		"type": typ, "freq": d.cfg.HeartbeatInterval.Seconds(),
		"active": st.Active, "processed": st.Processed, "loadavg": LoadAvg(),
		"sw_ident": d.cfg.SWIdent, "sw_ver": d.cfg.SWVer, "sw_sys": d.cfg.SWSys,
	}
}

// Run sends worker-online, then a worker-heartbeat every interval and the
// queued task events, until ctx is done; then it flushes what is queued
// and sends worker-offline. Run returns when worker-offline was sent.
func (d *Dispatcher) Run(ctx context.Context) {
	io := context.WithoutCancel(ctx)
	d.publish(io, d.workerFields("worker-online"))
	t := time.NewTicker(d.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
		flush:
			for {
				select {
				case f := <-d.queue:
					d.publish(io, f)
				default:
					break flush
				}
			}
			d.publish(io, d.workerFields("worker-offline"))
			return
		case <-t.C:
			d.publish(io, d.workerFields("worker-heartbeat"))
		case f := <-d.queue:
			d.publish(io, f)
		}
	}
}

func (d *Dispatcher) publish(ctx context.Context, f map[string]any) {
	f["clock"] = d.src.Clock().Forward()
	typ, _ := f["type"].(string)
	env, err := protocol.EncodeEvent(d.src.Hostname(), f)
	if err != nil {
		d.log.Error("events: encoding failed", "type", typ, "err", err)
		return
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := d.pub.PublishFanout(c, d.cfg.Names.EventChannel(typ), env); err != nil {
		if d.cfg.OnPublishError != nil {
			d.cfg.OnPublishError(err)
		}
		d.log.Warn("events: publish failed", "type", typ, "err", err)
	}
}

// LoadAvg is os.getloadavg() with each value rounded up to 2 decimals
// (Celery's heartbeat), [0, 0, 0] when unavailable.
func LoadAvg() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return []float64{0, 0, 0}
	}
	f := strings.Fields(string(b))
	out := []float64{0, 0, 0}
	for i := 0; i < 3 && i < len(f); i++ {
		v, err := strconv.ParseFloat(f[i], 64)
		if err == nil {
			out[i] = math.Ceil(v*100) / 100
		}
	}
	return out
}
