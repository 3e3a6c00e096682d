package redistransport

import (
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// BenchmarkFetchAck measures Publish + Fetch (one script round trip: pop
// and record) + Ack (one MULTI/EXEC round trip) per message.
func BenchmarkFetchAck(b *testing.B) {
	br, _, _ := newTestBroker(b, 1, Config{})
	q := "bench-" + uniq(b)
	ctx := ctxT(b)
	msg := envelope(envOpts{tag: "t", rk: q})
	queues := []string{q}
	b.ResetTimer()
	for b.Loop() {
		if err := br.Publish(ctx, q, 0, msg); err != nil {
			b.Fatal(err)
		}
		d, err := br.Fetch(ctx, queues, -1)
		if err != nil || d == nil {
			b.Fatal(d, err)
		}
		if err := br.Ack(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFetchManyAck measures the batched path: 32 messages per
// FetchMany script call and one AckTags per batch (publish excluded).
func BenchmarkFetchManyAck(b *testing.B) {
	br, c, pfx := newTestBroker(b, 1, Config{})
	q := "bench-" + uniq(b)
	ctx := ctxT(b)
	msg := envelope(envOpts{tag: "", rk: q, noTag: true})
	const batch = 32
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		args := []any{pfx + q}
		for range batch {
			args = append(args, msg)
		}
		if _, err := c.Do("LPUSH", args...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		ds, err := br.FetchMany(ctx, []string{q}, batch, -1)
		if err != nil || len(ds) != batch {
			b.Fatal(len(ds), err)
		}
		tags := make([]string, len(ds))
		for i, d := range ds {
			tags[i] = d.Tag
		}
		if err := br.AckTags(ctx, tags...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkStore measures one result write (GET-check + SETEX + PUBLISH in
// one script round trip).
func BenchmarkStore(b *testing.B) {
	r, _, _ := newTestBackend(b, 2, Config{})
	ctx := ctxT(b)
	meta := &protocol.ResultMeta{Status: protocol.StateStarted, Result: map[string]any{"pid": 1}}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		meta.TaskID = "bench-" + pyfmt.NewUUID4().String()
		if err := r.Store(ctx, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStoreAndAck measures the combined acks_late completion.
func BenchmarkStoreAndAck(b *testing.B) {
	br, _, _ := newTestBroker(b, 1, Config{})
	r, _, _ := newTestBackend(b, 1, Config{})
	r.UseBroker(br)
	ctx := ctxT(b)
	meta := &protocol.ResultMeta{Status: protocol.StateSuccess, Result: 4}
	d := &protocol.Delivery{Tag: "none"}
	b.ResetTimer()
	for b.Loop() {
		meta.TaskID = "bench-" + pyfmt.NewUUID4().String()
		if err := r.StoreAndAck(ctx, meta, d); err != nil {
			b.Fatal(err)
		}
	}
}
