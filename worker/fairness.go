package worker

// Fairness: at most Fairness.MaxPerKey tasks with the same key (for the
// Omicsomics file tasks: the user who uploaded the file) run at once, so
// one user's 1,000 uploads cannot starve the others. Tasks over the limit
// are "parked": they stay in the ready queue, held and leased (their
// unacked_index score is refreshed like every held message), and the pool
// runs the next eligible task instead. A parked message does not occupy a
// prefetch slot (the window grows by one per parked message, up to
// Fairness.MaxParked), so the worker keeps fetching and reaches other
// users' messages queued behind. Warm shutdown restores parked messages
// like any other unstarted one.
//
// All state lives under Worker.mu (the ready queue's lock).

import (
	"context"
	"fmt"
	"time"
)

// Fairness configures per-key concurrency limits (Config.Fairness). The
// zero value disables them.
type Fairness struct {
	// MaxPerKey is the most tasks sharing a non-empty key that run at
	// once (omics-worker worker --max-per-user N); 0 = no limit. Keys come
	// from TaskOptions.FairnessKey; tasks without one are never held back.
	MaxPerKey int
	// MaxParked bounds how many held-back messages widen the prefetch
	// window (default 10,000). Beyond it the window stops growing: memory
	// stays bounded, and only a backlog larger than this from one key can
	// delay the others again.
	MaxParked int
	// KeyTimeout bounds one FairnessKey call (default 2 s); on timeout or
	// error the task runs without a key (and the error is logged).
	KeyTimeout time.Duration
}

// KeyFunc returns the fairness key of a task ("" = none), e.g. the id of
// the user a file task works for. It runs on the fetching goroutine when
// the message is received, so it must be quick (cache lookups).
type KeyFunc func(ctx context.Context, t *Task) (string, error)

// fairState is the bookkeeping of Fairness (guarded by Worker.mu).
type fairState struct {
	keys    map[*job]string // held jobs with a non-empty key
	active  map[*job]bool   // keyed jobs counted in running
	parked  map[*job]bool   // held back in the ready queue
	running map[string]int  // key -> tasks running
}

func (f *fairState) init() {
	if f.keys == nil {
		f.keys = map[*job]string{}
		f.active = map[*job]bool{}
		f.parked = map[*job]bool{}
		f.running = map[string]int{}
	}
}

// fairKey computes and records j's fairness key when fairness is on and
// the task has a key function. Errors and panics leave j without a key.
func (w *Worker) fairKey(ctx context.Context, j *job) {
	f := w.cfg.Fairness
	if f.MaxPerKey <= 0 || j.def == nil || j.def.opts.FairnessKey == nil || j.msg == nil {
		return
	}
	timeout := f.KeyTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	kctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	msg := j.msg
	t := &Task{ID: msg.ID, Name: msg.Task, Args: msg.Args, Kwargs: msg.Kwargs, Retries: msg.Retries,
		Queue: j.d.Queue, Headers: msg.Headers, Message: msg, def: j.def, w: w}
	key, err := func() (key string, err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic in fairness key function: %v", r)
			}
		}()
		return j.def.opts.FairnessKey(kctx, t)
	}()
	if err != nil {
		j.log.Warn("fairness key lookup failed; the task runs without a per-key limit", "err", err)
		return
	}
	if key == "" {
		return
	}
	w.mu.Lock()
	w.fair.init()
	w.fair.keys[j] = key
	w.mu.Unlock()
}

// fairPickLocked returns the index in w.ready of the first job that may
// start now, or -1. Jobs over their key's limit are marked parked (which
// widens the prefetch window); the picked job is counted as running.
func (w *Worker) fairPickLocked() int {
	limit := w.cfg.Fairness.MaxPerKey
	f := &w.fair
	if limit <= 0 || len(f.keys) == 0 {
		if len(w.ready) > 0 {
			return 0
		}
		return -1
	}
	widened := false
	for i, j := range w.ready {
		key, ok := f.keys[j]
		if ok && f.running[key] >= limit {
			if !f.parked[j] {
				f.parked[j] = true
				widened = true
				j.log.Debug("Task held back: its key has reached the per-key limit", "key", key, "limit", limit)
			}
			continue
		}
		if f.parked[j] {
			delete(f.parked, j)
		}
		if ok {
			f.running[key]++
			f.active[j] = true
		}
		if widened {
			w.signalWindowLocked()
		}
		return i
	}
	if widened {
		w.signalWindowLocked()
	}
	return -1
}

// fairRoomLocked is how much parked messages widen the prefetch window.
func (w *Worker) fairRoomLocked() int {
	n := len(w.fair.parked)
	if n == 0 {
		return 0
	}
	limit := w.cfg.Fairness.MaxParked
	if limit <= 0 {
		limit = 10_000
	}
	return min(n, limit)
}

// fairForgetLocked drops j's fairness state when it is settled, restored
// or abandoned; a running keyed job frees its key's slot, and an idle pool
// goroutine is woken if parked jobs may now run.
func (w *Worker) fairForgetLocked(j *job) {
	f := &w.fair
	if f.keys == nil {
		return
	}
	key, ok := f.keys[j]
	if !ok {
		return
	}
	delete(f.keys, j)
	delete(f.parked, j)
	if f.active[j] {
		delete(f.active, j)
		if f.running[key]--; f.running[key] <= 0 {
			delete(f.running, key)
		}
		if len(f.parked) > 0 {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// signalWindowLocked wakes the fetch loop: the prefetch window grew.
func (w *Worker) signalWindowLocked() {
	select {
	case w.windowCh <- struct{}{}:
	default:
	}
}

// FairnessSnapshot reports, per key, how many tasks run now and how many
// are held back (for inspection and tests).
func (w *Worker) FairnessSnapshot() (running, parked map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	running, parked = map[string]int{}, map[string]int{}
	for k, n := range w.fair.running {
		running[k] = n
	}
	for j := range w.fair.parked {
		parked[w.fair.keys[j]]++
	}
	return running, parked
}
