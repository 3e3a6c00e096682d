package worker

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The commit gate: the step that makes a task's effect permanent (a
// database COMMIT) and the hard time limit decide in one place, so that a
// task is never recorded as FAILURE TimeLimitExceeded with its effect
// committed, nor as SUCCESS without it.
//
//   - The limit fires before a commit begins: the gate closes, the limit
//     wins (FAILURE TimeLimitExceeded) and a later Commit is refused with
//     ErrTaskFinished without running.
//   - The limit fires while a commit runs: the limit waits for it. If it
//     committed, the handler's own outcome is recorded (it must return
//     promptly after committing); if it failed, the limit wins.
//   - The limit fires after a commit: the handler's outcome is recorded.

type gateState int

const (
	gateOpen gateState = iota
	gateCommitting
	gateCommitted
	gateClosed
)

type commitGate struct {
	mu    sync.Mutex
	state gateState
	done  chan struct{} // closed when the running commit ends
}

// Commit runs fn, the step that makes the task's effect permanent. fn
// returns nil only when the effect is committed. fn runs with a context
// that time limits and revocation do not cancel (it keeps ctx's values):
// fn must bound its own duration. Commit returns ErrTaskFinished, without
// running fn, when the hard time limit already fired or the worker gave
// the task up; otherwise fn's error.
func (t *Task) Commit(ctx context.Context, fn func(ctx context.Context) error) error {
	g := &t.gate
	g.mu.Lock()
	if g.state == gateClosed || g.state == gateCommitting || t.finished.Load() {
		g.mu.Unlock()
		return fmt.Errorf("commit of %s: %w", t.ID, ErrTaskFinished)
	}
	prev := g.state
	g.state = gateCommitting
	g.done = make(chan struct{})
	g.mu.Unlock()

	committed := false // stays false if fn panics
	defer func() {
		g.mu.Lock()
		if committed {
			g.state = gateCommitted
		} else {
			g.state = prev
		}
		close(g.done)
		g.mu.Unlock()
	}()
	err := fn(context.WithoutCancel(ctx))
	committed = err == nil
	return err
}

// limit is the hard time limit's side: it reports true when the limit
// wins (no commit happened; none can begin any more) and false when the
// task committed (its outcome decides). A commit in progress is waited for.
func (g *commitGate) limit() bool {
	for {
		g.mu.Lock()
		switch g.state {
		case gateOpen, gateClosed:
			g.state = gateClosed
			g.mu.Unlock()
			return true
		case gateCommitted:
			g.mu.Unlock()
			return false
		}
		done := g.done
		g.mu.Unlock()
		<-done
	}
}

func (w *Worker) newHardTimer(d time.Duration) (<-chan time.Time, func() bool) {
	if w.cfg.hardTimer != nil {
		return w.cfg.hardTimer(d)
	}
	t := time.NewTimer(d)
	return t.C, t.Stop
}
