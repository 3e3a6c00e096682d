package worker

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
