package worker

// Resizing the pool at run time (the pool_grow and pool_shrink remote
// commands): growing starts pool goroutines, shrinking lets idle ones
// leave after their next task (hookRetire).

import (
	"errors"
	"sync"
)

// ErrNotRunning: the pool cannot be resized before Run started consuming
// or after shutdown began.
var ErrNotRunning = errors.New("worker: not running")

// hookPool records the pool's WaitGroup once Run started it.
func (w *Worker) hookPool(pool *sync.WaitGroup) {
	x := &w.mon
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
	x := &w.mon
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
	x := &w.mon
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
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.retire > 0 {
		x.retire--
		return true
	}
	return false
}
