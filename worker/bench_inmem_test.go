package worker

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// BenchmarkRuntimeNoop: the worker runtime alone (in-memory broker and
// backend, -c 2, noop handler), b.N tasks queued before the start; reports
// the process CPU per task (the runtime's scheduling, decoding and
// bookkeeping without Redis I/O).
func BenchmarkRuntimeNoop(b *testing.B) {
	reg := NewRegistry()
	if err := reg.Register("t.noop", func(context.Context, *Task) (any, error) { return nil, nil }, TaskOptions{}); err != nil {
		b.Fatal(err)
	}
	br, be := workertest.NewBroker(), workertest.NewBackend()
	for range b.N {
		raw, err := protocol.EncodeTask(protocol.NewTaskMessage("t.noop", nil, nil), protocol.PublishOptions{Queue: "q"})
		if err != nil {
			b.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(raw)
		if err != nil {
			b.Fatal(err)
		}
		br.Put(&protocol.Delivery{Queue: "q", Tag: env.Properties.DeliveryTag, Raw: raw, Envelope: env})
	}
	w, err := New(Config{Queues: []string{"q"}, Concurrency: 2, RestoreInterval: -1, LeaseInterval: -1,
		FetchTimeout: 20 * time.Millisecond, TimeLimit: time.Hour, SoftTimeLimit: 55 * time.Minute}, br, be, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c0 := ru.Utime.Nano() + ru.Stime.Nano()
	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	n, seen := 0, 0
	for {
		for _, m := range be.MetasSince(seen) {
			seen++
			if m.Status == protocol.StateSuccess {
				n++
			}
		}
		if n >= b.N {
			break
		}
		<-be.Notify()
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Utime.Nano()+ru.Stime.Nano()-c0)/1e3/float64(b.N), "cpu-us/task")
	cancel()
	<-done
}
