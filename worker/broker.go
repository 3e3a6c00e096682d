package worker

import (
	"context"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Broker is what the worker needs from a kombu-compatible transport. The
// Redis implementation lives in protocol/transport/redistransport.
type Broker interface {
	// Fetch waits up to timeout for one message from queues, served in
	// kombu priority order with round-robin rotation, and records it as
	// unacked before returning it. It returns (nil, nil) on timeout.
	Fetch(ctx context.Context, queues []string, timeout time.Duration) (*protocol.Delivery, error)
	// Ack removes the delivery's unacked record (also used for
	// reject-without-requeue).
	Ack(ctx context.Context, d *protocol.Delivery) error
	// Requeue puts the message back at the back of its queue (LPUSH,
	// consumed last) with the redelivered flags, as reject(requeue=True).
	Requeue(ctx context.Context, d *protocol.Delivery) error
	// Restore puts the message back at the front of its queue (RPUSH,
	// consumed next) with the redelivered flags, as on warm shutdown.
	Restore(ctx context.Context, d *protocol.Delivery) error
	// RestoreVisible restores every unacked message older than the
	// visibility timeout (kombu restore_visible, with its mutex) and
	// returns how many it restored.
	RestoreVisible(ctx context.Context, visibilityTimeout time.Duration) (int, error)
	// Touch refreshes the unacked_index score of held deliveries to now so
	// that no restore_visible hands them to another consumer (a lease).
	Touch(ctx context.Context, tags []string) error
	// Publish pushes an envelope to a queue at the given priority (LPUSH).
	Publish(ctx context.Context, queue string, priority int, envelope []byte) error
	// Bind registers the _kombu.binding member for a consumed queue.
	Bind(ctx context.Context, queue string) error
}

// ResultBackend stores task states the way the Celery Redis backend does.
type ResultBackend interface {
	// Store writes meta: GET-check (never overwrite SUCCESS), then
	// SETEX + PUBLISH on celery-task-meta-<id>, atomically.
	Store(ctx context.Context, meta *protocol.ResultMeta) error
}
