package worker

// In-memory Broker and ResultBackend doubles, used ONLY for tests of pure
// runtime logic (prefetch accounting, ETA ordering, time limits, shutdown).
// The wire behaviour is proven against the real Redis and the real Python
// Celery in cmd/omics-worker/interop_test.go.

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

type memBroker struct {
	mu        sync.Mutex
	queue     []*protocol.Delivery
	unacked   map[string]*protocol.Delivery
	maxHeld   int // highest len(unacked) seen right after a Fetch
	acked     []string
	restored  []string
	published []published
	touched   map[string]int
	restoreN  int
	notify    chan struct{}
}

type published struct {
	queue    string
	priority int
	raw      []byte
}

func newMemBroker() *memBroker {
	return &memBroker{unacked: map[string]*protocol.Delivery{}, touched: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (b *memBroker) put(d *protocol.Delivery) {
	b.mu.Lock()
	b.queue = append(b.queue, d)
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

func (b *memBroker) Fetch(ctx context.Context, queues []string, timeout time.Duration) (*protocol.Delivery, error) {
	deadline := time.After(timeout)
	for {
		b.mu.Lock()
		if len(b.queue) > 0 {
			d := b.queue[0]
			b.queue = b.queue[1:]
			b.unacked[d.Tag] = d
			b.maxHeld = max(b.maxHeld, len(b.unacked))
			b.mu.Unlock()
			return d, nil
		}
		b.mu.Unlock()
		select {
		case <-b.notify:
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (b *memBroker) Ack(_ context.Context, d *protocol.Delivery) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.unacked, d.Tag)
	b.acked = append(b.acked, d.Tag)
	return nil
}

func (b *memBroker) Requeue(_ context.Context, d *protocol.Delivery) error {
	b.mu.Lock()
	delete(b.unacked, d.Tag)
	b.mu.Unlock()
	b.put(d)
	return nil
}

func (b *memBroker) Restore(_ context.Context, d *protocol.Delivery) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.unacked, d.Tag)
	b.restored = append(b.restored, d.Tag)
	return nil
}

func (b *memBroker) RestoreVisible(context.Context, time.Duration) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.restoreN++
	return 0, nil
}

func (b *memBroker) Touch(_ context.Context, tags []string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range tags {
		b.touched[t]++
	}
	return nil
}

func (b *memBroker) Publish(_ context.Context, queue string, priority int, raw []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, published{queue, priority, raw})
	return nil
}

func (b *memBroker) Bind(context.Context, string) error { return nil }

func (b *memBroker) snapshot() (unacked int, acked, restored []string, pub []published) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.unacked), append([]string(nil), b.acked...), append([]string(nil), b.restored...), append([]published(nil), b.published...)
}

// memBackend records every stored meta.
type memBackend struct {
	mu     sync.Mutex
	metas  []*protocol.ResultMeta
	notify chan struct{}
}

func newMemBackend() *memBackend { return &memBackend{notify: make(chan struct{}, 1)} }

func (r *memBackend) Store(_ context.Context, m *protocol.ResultMeta) error {
	r.mu.Lock()
	r.metas = append(r.metas, m)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	return nil
}

// states returns the states stored for id, in order.
func (r *memBackend) states(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.metas {
		if m.TaskID == id {
			out = append(out, m.Status)
		}
	}
	return out
}

// final returns the last READY meta of id, nil if none.
func (r *memBackend) final(id string) *protocol.ResultMeta {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.metas) - 1; i >= 0; i-- {
		if m := r.metas[i]; m.TaskID == id && (isReady(m.Status) || m.Status == protocol.StateRetry) {
			return m
		}
	}
	return nil
}

// waitFinal waits (generously; not a timing assertion) for id's final meta.
func (r *memBackend) waitFinal(t *testing.T, id string) *protocol.ResultMeta {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := r.final(id); m != nil {
			return m
		}
		select {
		case <-r.notify:
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("task %s never finished; states %v", id, r.states(id))
	return nil
}

// waitUntil polls cond (generous deadline; not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// delivery builds a delivery of a real v2 message.
func delivery(t *testing.T, msg *protocol.TaskMessage, queue string) *protocol.Delivery {
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

func resultJSON(t *testing.T, m *protocol.ResultMeta) string {
	t.Helper()
	b, err := json.Marshal(m.Result)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
