// Package workertest holds the in-memory Broker and ResultBackend doubles
// of the worker runtime, for unit tests of pure runtime logic (prefetch
// accounting, ETA ordering, time limits, shutdown, control handlers). The
// wire behaviour is proven against the real Redis and the real Python
// Celery (protocol/transport/redistransport and cmd/omics-worker tests).
//
// The package imports protocol only, not worker: the doubles satisfy
// worker.Broker and worker.ResultBackend structurally, so package worker's
// own (internal) tests can import it without an import cycle, and the
// tests of worker/control and cmd/omics-worker import the same doubles.
package workertest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Wait is how long the waiting helpers wait before they fail the test:
// generous, they are not timing assertions.
const Wait = 20 * time.Second

// Broker is an in-memory broker: a FIFO of deliveries, the unacknowledged
// set, and a record of every call.
type Broker struct {
	mu        sync.Mutex
	queue     []*protocol.Delivery
	unacked   map[string]*protocol.Delivery
	maxHeld   int
	acked     []string
	restored  []string
	published []Published
	touched   map[string]int
	restoreN  int
	bound     []string
	notify    chan struct{}
}

// Published is one recorded Publish.
type Published struct {
	Queue    string
	Priority int
	Raw      []byte
}

// NewBroker returns an empty Broker.
func NewBroker() *Broker {
	return &Broker{unacked: map[string]*protocol.Delivery{}, touched: map[string]int{}, notify: make(chan struct{}, 1)}
}

// signal wakes one waiter of ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Put queues d for Fetch.
func (b *Broker) Put(d *protocol.Delivery) {
	b.mu.Lock()
	b.queue = append(b.queue, d)
	b.mu.Unlock()
	signal(b.notify)
}

// Fetch pops the oldest delivery, waiting up to timeout (nil, nil then).
func (b *Broker) Fetch(ctx context.Context, _ []string, timeout time.Duration) (*protocol.Delivery, error) {
	deadline := time.After(timeout)
	for {
		if d := b.pop(); d != nil {
			return d, nil
		}
		select {
		case <-b.notify:
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pop moves the oldest queued delivery to the unacknowledged set.
func (b *Broker) pop() *protocol.Delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		return nil
	}
	d := b.queue[0]
	b.queue = b.queue[1:]
	b.unacked[d.Tag] = d
	b.maxHeld = max(b.maxHeld, len(b.unacked))
	return d
}

// settle removes d from the unacknowledged set and appends its tag to
// *into (nil: recorded nowhere).
func (b *Broker) settle(d *protocol.Delivery, into *[]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.unacked, d.Tag)
	if into != nil {
		*into = append(*into, d.Tag)
	}
}

// Ack records the acknowledgement of d.
func (b *Broker) Ack(_ context.Context, d *protocol.Delivery) error {
	b.settle(d, &b.acked)
	return nil
}

// Requeue puts d back at the end of the queue.
func (b *Broker) Requeue(_ context.Context, d *protocol.Delivery) error {
	b.settle(d, nil)
	b.Put(d)
	return nil
}

// Restore records that d was given back (it is not queued again).
func (b *Broker) Restore(_ context.Context, d *protocol.Delivery) error {
	b.settle(d, &b.restored)
	return nil
}

// RestoreVisible counts its calls and restores nothing.
func (b *Broker) RestoreVisible(context.Context, time.Duration) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restoreN++
	return 0, nil
}

// Touch counts the lease renewals of each tag.
func (b *Broker) Touch(_ context.Context, tags []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range tags {
		b.touched[t]++
	}
	return nil
}

// Publish records the message (it is not queued: tests feed it back with
// Put when they want Redis's delivery).
func (b *Broker) Publish(_ context.Context, queue string, priority int, raw []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, Published{queue, priority, raw})
	return nil
}

// Bind records the queue.
func (b *Broker) Bind(_ context.Context, queue string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bound = append(b.bound, queue)
	return nil
}

// Snapshot returns the number of unacknowledged deliveries and copies of
// the acknowledged and restored tags and of the published messages.
func (b *Broker) Snapshot() (unacked int, acked, restored []string, pub []Published) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.unacked), append([]string(nil), b.acked...), append([]string(nil), b.restored...), append([]Published(nil), b.published...)
}

// MaxHeld is the largest number of unacknowledged deliveries right after
// a Fetch (the prefetch window actually used).
func (b *Broker) MaxHeld() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxHeld
}

// UnackedTouches maps each unacknowledged tag to its Touch count.
func (b *Broker) UnackedTouches() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.unacked))
	for tag := range b.unacked {
		out[tag] = b.touched[tag]
	}
	return out
}

// RestoreVisibleCalls is the number of RestoreVisible calls.
func (b *Broker) RestoreVisibleCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.restoreN
}

// Bound returns the queues passed to Bind, in order.
func (b *Broker) Bound() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bound...)
}

// Backend is an in-memory result backend recording every stored meta.
type Backend struct {
	mu     sync.Mutex
	metas  []*protocol.ResultMeta
	notify chan struct{}
}

// NewBackend returns an empty Backend.
func NewBackend() *Backend { return &Backend{notify: make(chan struct{}, 1)} }

// Store records m.
func (r *Backend) Store(_ context.Context, m *protocol.ResultMeta) error {
	r.mu.Lock()
	r.metas = append(r.metas, m)
	r.mu.Unlock()
	signal(r.notify)
	return nil
}

// Metas returns the stored metas, in order.
func (r *Backend) Metas() []*protocol.ResultMeta {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*protocol.ResultMeta(nil), r.metas...)
}

// MetasSince returns the metas stored after the first i, in order.
func (r *Backend) MetasSince(i int) []*protocol.ResultMeta {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.metas) {
		return nil
	}
	return append([]*protocol.ResultMeta(nil), r.metas[i:]...)
}

// Notify is signalled (at most one pending signal) after each Store.
func (r *Backend) Notify() <-chan struct{} { return r.notify }

// Reset forgets the stored metas.
func (r *Backend) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metas = nil
}

// States returns the states stored for id, in order.
func (r *Backend) States(id string) []string {
	var out []string
	for _, m := range r.Metas() {
		if m.TaskID == id {
			out = append(out, m.Status)
		}
	}
	return out
}

// Final returns the last READY or RETRY meta of id, nil if none.
func (r *Backend) Final(id string) *protocol.ResultMeta {
	metas := r.Metas()
	for i := len(metas) - 1; i >= 0; i-- {
		if m := metas[i]; m.TaskID == id && (protocol.IsReady(m.Status) || m.Status == protocol.StateRetry) {
			return m
		}
	}
	return nil
}

// WaitFinal waits (up to Wait) for id's final meta.
func (r *Backend) WaitFinal(t testing.TB, id string) *protocol.ResultMeta {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for time.Now().Before(deadline) {
		if m := r.Final(id); m != nil {
			return m
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("task %s never finished; states %v", id, r.States(id))
	return nil
}

// WaitUntil polls cond until it holds, failing t after Wait.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Delivery builds the delivery of a real v2 message published to queue.
func Delivery(t testing.TB, msg *protocol.TaskMessage, queue string) *protocol.Delivery {
	t.Helper()
	raw, err := protocol.EncodeTask(msg, protocol.PublishOptions{Queue: queue})
	if err != nil {
		t.Fatal(err)
	}
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &protocol.Delivery{Queue: queue, Tag: env.Properties.DeliveryTag, Raw: raw, Envelope: env}
}

// ResultJSON is m's result as JSON.
func ResultJSON(t testing.TB, m *protocol.ResultMeta) string {
	t.Helper()
	b, err := json.Marshal(m.Result)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
