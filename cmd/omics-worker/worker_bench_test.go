package main

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/diag"
)

// countingBackend counts SUCCESS writes, on every path the worker writes a
// final state by (Store, StoreAndAck and the group commit's StoreAckFetch:
// a path not wrapped here would reach the embedded backend uncounted and
// the benchmark would wait forever).
type countingBackend struct {
	*redistransport.ResultBackend
	success atomic.Int64
	done    chan struct{}
	want    int64
}

func (c *countingBackend) count(m *protocol.ResultMeta) {
	if m.Status == protocol.StateSuccess && c.success.Add(1) == c.want {
		close(c.done)
	}
}

func (c *countingBackend) Store(ctx context.Context, m *protocol.ResultMeta) error {
	err := c.ResultBackend.Store(ctx, m)
	c.count(m)
	return err
}

func (c *countingBackend) StoreAndAck(ctx context.Context, m *protocol.ResultMeta, d *protocol.Delivery) error {
	err := c.ResultBackend.StoreAndAck(ctx, m, d)
	c.count(m)
	return err
}

func (c *countingBackend) StoreAckFetch(ctx context.Context, m *protocol.ResultMeta, d *protocol.Delivery, queues []string) ([]*protocol.Delivery, error) {
	ds, err := c.ResultBackend.StoreAckFetch(ctx, m, d, queues)
	c.count(m)
	return ds, err
}

// benchWorker measures the in-process Go worker against the real Redis
// (crashDBs: testenv.RedisDBCrash and RedisDBCrashResults): b.N messages are queued first, then the
// worker drains them; tasks/s is reported.
func benchWorker(b *testing.B, task string, kwargs map[string]any, cfg worker.Config) {
	testenv.NeedRedis(b, crashDBs.broker)
	ctx := context.Background()
	q := fmt.Sprintf("bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	rcfg := redistransport.Config{ResultExpires: 10 * time.Minute}
	broker, err := redistransport.NewBroker(fmt.Sprintf("redis://%s/%d", redisAddr, crashDBs.broker), rcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer broker.Close()
	rb, err := redistransport.NewResultBackend(fmt.Sprintf("redis://%s/%d", redisAddr, crashDBs.backend), rcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer rb.Close()
	rb.UseBroker(broker)
	backend := &countingBackend{ResultBackend: rb, done: make(chan struct{}), want: int64(b.N)}
	for range b.N {
		raw, err := protocol.EncodeTask(protocol.NewTaskMessage(task, nil, kwargs), protocol.PublishOptions{Queue: q})
		if err != nil {
			b.Fatal(err)
		}
		if err := broker.Publish(ctx, q, 0, raw); err != nil {
			b.Fatal(err)
		}
	}
	reg := worker.NewRegistry()
	if err := diag.Register(reg); err != nil {
		b.Fatal(err)
	}
	cfg.Queues, cfg.RestoreInterval = []string{q}, -1
	w, err := worker.New(cfg, broker, backend, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	b.ResetTimer()
	go func() { _ = w.Run(runCtx); close(stopped) }()
	select {
	case <-backend.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d tasks finished", backend.success.Load(), b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	cancel()
	<-stopped
}

func BenchmarkWorkerNoopC2(b *testing.B) {
	benchWorker(b, diag.Noop, nil, worker.Config{Concurrency: 2})
}

func BenchmarkWorkerNoopC2EarlyAck(b *testing.B) {
	benchWorker(b, diag.Noop, nil, worker.Config{Concurrency: 2, AcksEarly: true})
}

func BenchmarkWorkerNoopC2Prefetch4(b *testing.B) {
	benchWorker(b, diag.Noop, nil, worker.Config{Concurrency: 2, PrefetchMultiplier: 4})
}

func BenchmarkWorkerProgress5C2(b *testing.B) {
	benchWorker(b, diag.Progress, map[string]any{"steps": 5}, worker.Config{Concurrency: 2})
}

func BenchmarkWorkerNoopC8(b *testing.B) {
	benchWorker(b, diag.Noop, nil, worker.Config{Concurrency: 8})
}
