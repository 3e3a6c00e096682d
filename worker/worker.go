package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// storeAcker is optionally implemented by a ResultBackend (or Broker) that
// can store a final state and acknowledge the delivery in one round trip.
type storeAcker interface {
	StoreAndAck(ctx context.Context, meta *protocol.ResultMeta, d *protocol.Delivery) error
}

// jobState tracks where a held message is.
type jobState int

const (
	stateQueued  jobState = iota // prefetched, waiting for a pool slot
	stateETA                     // waiting for its ETA in a timer
	stateRunning                 // handed to the pool
	stateDone                    // acked, restored or abandoned
)

// job is one held delivery.
type job struct {
	d        *protocol.Delivery
	msg      *protocol.TaskMessage
	def      *taskDef
	state    jobState
	inWindow bool // occupies a prefetch slot
	acked    bool // early-acked (or finished)
	timer    *time.Timer
	cancel   context.CancelCauseFunc
	log      *slog.Logger
}

// Worker consumes Celery task messages and runs registered handlers. Build
// it with New and start it with Run.
type Worker struct {
	cfg        Config
	broker     Broker
	backend    ResultBackend
	storeAcker storeAcker
	reg        *Registry
	log        *slog.Logger

	mu       sync.Mutex
	held     map[*job]struct{} // popped and not yet acked or restored
	running  map[*job]struct{} // handed to the pool (acked early or not)
	inWindow int
	etaHeld  int
	ready    []*job
	stopping bool

	windowCh chan struct{} // a prefetch slot was freed
	wake     chan struct{} // a job became ready
	stopCh   chan struct{} // closed when shutdown starts
	abandon  chan struct{} // closed when running tasks are given up
	readyCh  chan struct{} // closed once consuming
	coldOnce sync.Once
	coldCh   chan struct{} // closed by ColdShutdown
	runOnce  sync.Once
	folds    sync.WaitGroup // fetches folded into result writes in flight (groupcommit.go)

	// mon is the state read and changed by remote control and
	// monitoring, under its own lock (monitorState).
	mon monitorState
	// fair is the per-key limit state (fairness.go), guarded by mu.
	fair fairState
}

// monitorState is what remote control and monitoring (worker/control,
// worker/events, worker/metrics) read and change while the worker runs:
// the Lamport clock, the revoked set, the counters of `inspect stats`, the
// per-job start times and outcomes behind `inspect active` and the final
// task events, pending terminates, rate limits, the consumed queues and
// pool resizing. mu guards the maps and the fields below it; it is never
// held while taking Worker.mu, but may be taken under it.
type monitorState struct {
	clock   Clock
	revoked RevokedSet
	// revokedStamps: revoke_by_stamped_headers (revoked_stamps.go)
	revokedStamps RevokedStamps
	start         time.Time
	processed     atomic.Int64
	observers     atomic.Pointer[[]Observer] // copy on write under mu

	mu        sync.Mutex
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

func (m *monitorState) init() {
	m.start = time.Now()
	m.started = map[*job]time.Time{}
	m.outcomes = map[*job]outcome{}
	m.terminate = map[string]int{}
	m.total = map[string]int64{}
	m.rates = map[string]*rateLimit{}
	m.rateText = map[string]string{}
	m.observers.Store(new([]Observer))
}

// Clock returns the worker's Lamport clock.
func (w *Worker) Clock() *Clock { return &w.mon.clock }

// Revoked returns the worker's revoked set.
func (w *Worker) Revoked() *RevokedSet { return &w.mon.revoked }

// New builds a worker that runs the handlers of reg. A nil logger drops
// all logs.
func New(cfg Config, broker Broker, backend ResultBackend, reg *Registry, logger *slog.Logger) (*Worker, error) {
	if broker == nil || backend == nil {
		return nil, errors.New("worker: nil broker or result backend")
	}
	if reg == nil {
		reg = NewRegistry()
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	w := &Worker{
		cfg:      cfg,
		broker:   broker,
		backend:  backend,
		reg:      reg,
		log:      logger,
		held:     make(map[*job]struct{}),
		running:  make(map[*job]struct{}),
		windowCh: make(chan struct{}, 1),
		wake:     make(chan struct{}, cfg.Concurrency),
		stopCh:   make(chan struct{}),
		abandon:  make(chan struct{}),
		readyCh:  make(chan struct{}),
		coldCh:   make(chan struct{}),
	}
	w.mon.init()
	if sa, ok := backend.(storeAcker); ok {
		w.storeAcker = sa
	} else if sa, ok := broker.(storeAcker); ok {
		w.storeAcker = sa
	}
	return w, nil
}

// Config returns the effective configuration (defaults filled in;
// Concurrency follows pool_grow/pool_shrink).
func (w *Worker) Config() Config {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cfg
}

// Ready is closed once the worker has bound its queues and started
// consuming.
func (w *Worker) Ready() <-chan struct{} { return w.readyCh }

// ColdShutdown turns a warm shutdown (or a future one) into a cold one:
// running tasks are cancelled at once (context cause ErrWorkerShutdown) and
// their messages restored unless they were acknowledged early. Safe to call
// more than once and from any goroutine.
func (w *Worker) ColdShutdown() { w.coldOnce.Do(func() { close(w.coldCh) }) }

// Run consumes until ctx is cancelled, then shuts down warmly: it stops
// fetching, restores every held message that has not started (prefetched or
// waiting for an ETA) to the front of its queue, waits up to
// Config.ShutdownTimeout for running tasks, then cancels the rest and
// restores their messages. Run may be called once.
func (w *Worker) Run(ctx context.Context) error {
	err := errors.New("worker: Run called twice")
	w.runOnce.Do(func() { err = w.run(ctx) })
	return err
}

func (w *Worker) run(ctx context.Context) error {
	// Broker I/O must survive the shutdown signal: a Fetch cut short could
	// lose the message it just popped, restores must still reach Redis.
	io := context.WithoutCancel(ctx)
	for _, q := range w.cfg.Queues {
		if err := w.broker.Bind(io, q); err != nil {
			return fmt.Errorf("worker: bind queue %s: %w", q, err)
		}
	}
	w.log.Info("worker ready", "hostname", w.cfg.Hostname, "queues", w.cfg.Queues,
		"concurrency", w.cfg.Concurrency, "prefetch", w.cfg.prefetchLimit(),
		"acks_late", !w.cfg.AcksEarly, "tasks", w.reg.Names())

	var bg sync.WaitGroup // lease + restore loops
	bgStop := make(chan struct{})
	if w.cfg.LeaseInterval > 0 {
		bg.Go(func() { w.leaseLoop(io, bgStop) })
	}
	if w.cfg.RestoreInterval > 0 {
		bg.Go(func() { w.restoreLoop(io, bgStop) })
	}

	var pool sync.WaitGroup
	for range w.cfg.Concurrency {
		pool.Go(func() { w.poolLoop() })
	}
	w.hookPool(&pool)
	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		w.fetchLoop(io)
	}()
	close(w.readyCh)

	select {
	case <-ctx.Done():
	case <-w.coldCh:
	}
	w.log.Info("warm shutdown: no more messages are fetched")
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	close(w.stopCh)
	<-fetchDone
	w.folds.Wait() // their messages are held (or settled) before the restore
	w.restoreUnstarted(io)

	poolDone := make(chan struct{})
	go func() { pool.Wait(); close(poolDone) }()
	var timeout <-chan time.Time
	if w.cfg.ShutdownTimeout > 0 {
		t := time.NewTimer(w.cfg.ShutdownTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-poolDone:
	case <-w.coldCh:
		w.log.Warn("cold shutdown: cancelling running tasks")
		w.cancelRunning()
	case <-timeout:
		w.log.Warn("shutdown timeout reached: cancelling running tasks", "timeout", w.cfg.ShutdownTimeout)
		w.cancelRunning()
	}
	select {
	case <-poolDone:
	case <-time.After(coldGrace):
		// Handlers that ignore cancellation are abandoned: their messages
		// are restored (or were acked early) and their goroutines leak
		// until the process exits.
		close(w.abandon)
		<-poolDone
	}
	close(bgStop)
	bg.Wait()
	w.log.Info("worker stopped", "hostname", w.cfg.Hostname)
	return nil
}

// coldGrace is how long cancelled tasks get to return before they are
// abandoned.
const coldGrace = 3 * time.Second

// cancelRunning cancels every running task with ErrWorkerShutdown.
func (w *Worker) cancelRunning() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for j := range w.running {
		if j.cancel != nil {
			j.cancel(ErrWorkerShutdown)
		}
	}
}

// --- prefetch window ----------------------------------------------------

// waitWindow blocks until the prefetch window has room and returns how
// many messages may be fetched; 0 = stopping.
func (w *Worker) waitWindow() int {
	for {
		w.mu.Lock()
		stopping, room := w.stopping, w.roomLocked()
		w.mu.Unlock()
		if stopping {
			return 0
		}
		if room > 0 {
			return room
		}
		select {
		case <-w.windowCh:
		case <-w.stopCh:
		}
	}
}

// roomLocked is the free part of the prefetch window (unlimited windows
// fetch in batches of unlimitedBatch).
func (w *Worker) roomLocked() int {
	limit := w.cfg.prefetchLimit()
	if limit == 0 {
		return unlimitedBatch
	}
	return max(limit+w.etaHeld+w.fairRoomLocked()-w.inWindow, 0)
}

const unlimitedBatch = 64

// releaseLocked frees j's prefetch slot; w.mu must be held.
func (w *Worker) releaseLocked(j *job) {
	if j.inWindow {
		j.inWindow = false
		w.inWindow--
		select {
		case w.windowCh <- struct{}{}:
		default:
		}
	}
}

// forget removes j from the held set and frees its slot.
func (w *Worker) forget(j *job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.releaseLocked(j)
	delete(w.held, j)
	w.fairForgetLocked(j)
	j.state = stateDone
}

// batchFetcher is optionally implemented by a Broker that can pop several
// messages in one round trip.
type batchFetcher interface {
	FetchMany(ctx context.Context, queues []string, max int, timeout time.Duration) ([]*protocol.Delivery, error)
}

func (w *Worker) fetchLoop(ctx context.Context) {
	bf, _ := w.broker.(batchFetcher)
	for {
		room := w.waitWindow()
		if room == 0 {
			return
		}
		queues := w.Queues() // add_consumer / cancel_consumer change them
		if len(queues) == 0 {
			select {
			case <-time.After(w.cfg.FetchTimeout):
			case <-w.stopCh:
			}
			continue
		}
		var ds []*protocol.Delivery
		var err error
		if bf != nil && room > 1 {
			ds, err = bf.FetchMany(ctx, queues, room, w.cfg.FetchTimeout)
		} else {
			var d *protocol.Delivery
			d, err = w.broker.Fetch(ctx, queues, w.cfg.FetchTimeout)
			if d != nil {
				ds = []*protocol.Delivery{d}
			}
		}
		for _, d := range ds { // deliveries returned with an error are still held
			w.receive(ctx, d)
		}
		if err != nil {
			w.log.Error("fetch failed; retrying", "err", err, "pause", w.cfg.RetryPause)
			select {
			case <-time.After(w.cfg.RetryPause):
			case <-w.stopCh:
			}
		}
	}
}

// --- pool ---------------------------------------------------------------

func (w *Worker) push(j *job) {
	w.mu.Lock()
	j.state = stateQueued
	w.ready = append(w.ready, j)
	w.mu.Unlock()
	w.signalReady()
}

// signalReady wakes one idle pool goroutine.
func (w *Worker) signalReady() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// next pops a ready job; nil once shutdown started.
func (w *Worker) next() *job {
	for {
		w.mu.Lock()
		if w.stopping {
			w.mu.Unlock()
			return nil
		}
		if i := w.fairPickLocked(); i >= 0 { // per-key limits (fairness.go)
			j := w.ready[i]
			if i == 0 {
				w.ready[0] = nil
				w.ready = w.ready[1:]
			} else {
				n := len(w.ready)
				copy(w.ready[i:], w.ready[i+1:])
				w.ready[n-1] = nil
				w.ready = w.ready[:n-1]
			}
			j.state = stateRunning
			w.running[j] = struct{}{}
			w.mu.Unlock()
			return j
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-w.stopCh:
		}
	}
}

func (w *Worker) poolLoop() {
	for {
		j := w.next()
		if j == nil {
			return
		}
		w.execute(j)
		w.mu.Lock()
		delete(w.running, j)
		w.mu.Unlock()
		if w.hookRetire() { // pool_shrink
			return
		}
	}
}

// restoreUnstarted puts every held message that has not started back at
// the front of its queue (kombu restore_unacked_once).
func (w *Worker) restoreUnstarted(ctx context.Context) {
	w.mu.Lock()
	var todo []*job
	for j := range w.held {
		if j.state == stateQueued || j.state == stateETA {
			if j.timer != nil {
				j.timer.Stop()
			}
			j.state = stateDone
			todo = append(todo, j)
		}
	}
	w.ready = nil
	w.mu.Unlock()
	if len(todo) > 0 {
		w.log.Info(fmt.Sprintf("Restoring %d unacknowledged message(s)", len(todo)))
	}
	for _, j := range todo {
		if err := w.broker.Restore(ctx, j.d); err != nil {
			w.log.Error("restore failed; the message returns after the visibility timeout",
				"err", err, "delivery_tag", j.d.Tag)
		}
		w.forget(j)
	}
}

// --- leases and visibility restore ----------------------------------------

func (w *Worker) leaseLoop(ctx context.Context, stop <-chan struct{}) {
	t := time.NewTicker(w.cfg.LeaseInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		tags := make([]string, 0, len(w.held))
		for j := range w.held {
			if j.d.Tag != "" {
				tags = append(tags, j.d.Tag)
			}
		}
		w.mu.Unlock()
		if len(tags) == 0 {
			continue
		}
		if err := w.broker.Touch(ctx, tags); err != nil {
			w.log.Warn("lease refresh failed", "err", err, "held", len(tags))
		}
	}
}

func (w *Worker) restoreLoop(ctx context.Context, stop <-chan struct{}) {
	for {
		n, err := w.broker.RestoreVisible(ctx, w.cfg.VisibilityTimeout)
		switch {
		case err != nil:
			w.log.Warn("restore of timed-out unacked messages failed", "err", err)
		case n > 0:
			w.log.Info(fmt.Sprintf("Restored %d message(s) held past the visibility timeout", n))
		}
		// ±10 % jitter so that many workers do not scan together.
		base := w.cfg.RestoreInterval
		d := base - base/10 + time.Duration(rand.Int64N(int64(base/5)+1))
		select {
		case <-stop:
			return
		case <-time.After(d):
		}
	}
}
