package worker

// Group commit: optional capabilities of a ResultBackend that save round
// trips (the Redis backend's group-commit writer): non-final states queued
// without waiting, and the fetch of the next message folded into the
// round trip that stores a final state and acks.

import (
	"context"

	"github.com/omicsomics/omics-worker/protocol"
)

// noWaitStorer is optionally implemented by a ResultBackend that can queue
// a write without waiting for it while keeping the order of all its writes
// (the Redis backend's group-commit writer). The worker uses it for the
// non-final states — STARTED and UpdateState (PROGRESS…) — so they cost no
// round trip of their own; the final state written later through Store or
// StoreAndAck is ordered after them.
type noWaitStorer interface {
	StoreNoWait(ctx context.Context, meta *protocol.ResultMeta) error
}

// storeNoWait writes a non-final state: queued without waiting when the
// backend supports it, else stored synchronously (with retries).
func (w *Worker) storeNoWait(ctx context.Context, meta *protocol.ResultMeta) error {
	if nw, ok := w.backend.(noWaitStorer); ok {
		return nw.StoreNoWait(ctx, meta)
	}
	return w.store(ctx, meta)
}

// storeAckFetcher is optionally implemented by a ResultBackend that can,
// in the round trip that stores a final state and acks its delivery, also
// pop and record the next message (the Redis backend's group-commit
// writer).
type storeAckFetcher interface {
	StoreAckFetch(ctx context.Context, meta *protocol.ResultMeta, d *protocol.Delivery, queues []string) ([]*protocol.Delivery, error)
}

// settleNext is settle for the final state of an executed task, folding
// the fetch of the next message into the same round trip: the prefetch
// slot of j passes straight to the fetched message (received before j is
// forgotten), so the fetch loop, which only fetches into free slots, stays
// idle while messages keep coming this way, and a task costs one round
// trip instead of two. It reports false (nothing done) when the fold does
// not apply: no such backend, nothing to store, an early-acked or
// window-less job, an unlimited window, or shutdown.
//
// Only this path folds a fetch, and a fetched message is received (never
// executed) here, so the recursion is one level deep.
func (w *Worker) settleNext(ctx context.Context, j *job, meta *protocol.ResultMeta) bool {
	sf, ok := w.backend.(storeAckFetcher)
	if !ok || meta == nil || meta.TaskID == "" || j.acked {
		return false
	}
	queues := w.Queues()
	if len(queues) == 0 {
		return false
	}
	// Registered under w.mu with the stopping check: a warm shutdown
	// waits for folds in flight before restoring unstarted messages, so a
	// message fetched here is always either run or restored.
	w.mu.Lock()
	ok = !w.stopping && j.inWindow && w.cfg.prefetchLimit() > 0
	if ok {
		w.folds.Add(1)
	}
	w.mu.Unlock()
	if !ok {
		return false
	}
	defer w.folds.Done()
	defer w.forget(j)
	defer w.hookSettle(j, meta)
	ds, err := sf.StoreAckFetch(ctx, meta, j.d, queues)
	for _, d := range ds {
		w.receive(ctx, d)
	}
	if err == nil {
		j.acked = true
		return true
	}
	if err = w.storeAndAck(ctx, j, meta); err != nil {
		j.log.Error("storing the result failed; the message stays unacked and returns after the visibility timeout", "err", err, "state", meta.Status)
	}
	return true
}
