package worker

// The consumed queues at run time (the add_consumer, cancel_consumer and
// active_queues remote commands).

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Queues returns the queues consumed now.
func (w *Worker) Queues() []string {
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		return slices.Clone(w.cfg.Queues)
	}
	return slices.Clone(x.queues)
}

// AddQueue starts consuming queue (after binding it, like add_consumer);
// adding a consumed queue is a no-op.
func (w *Worker) AddQueue(ctx context.Context, queue string) error {
	if queue == "" {
		return errors.New("worker: empty queue name")
	}
	if err := w.broker.Bind(ctx, queue); err != nil {
		return fmt.Errorf("worker: bind queue %s: %w", queue, err)
	}
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		x.queues = slices.Clone(w.cfg.Queues)
	}
	if !slices.Contains(x.queues, queue) {
		x.queues = append(x.queues, queue)
		w.log.Info("Started consuming from " + queue)
	}
	return nil
}

// CancelQueue stops consuming queue; it reports whether it was consumed.
func (w *Worker) CancelQueue(queue string) bool {
	x := &w.mon
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.queues == nil {
		x.queues = slices.Clone(w.cfg.Queues)
	}
	i := slices.Index(x.queues, queue)
	if i < 0 {
		return false
	}
	x.queues = slices.Delete(x.queues, i, i+1)
	w.log.Info("No longer consuming from " + queue)
	return true
}
