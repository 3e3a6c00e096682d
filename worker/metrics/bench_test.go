package metrics

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

// observeOne records what the worker reports for one task that runs and
// succeeds: received, then succeeded with its runtime.
func observeOne(c *Collector, rt time.Duration) {
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskReceived, Name: "omics.process_file", Task: "omics.process_file"})
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, Name: "omics.process_file", Task: "omics.process_file", Runtime: rt})
}

// BenchmarkObserveTask is the metrics cost of one observed task (one op =
// received + succeeded).
func BenchmarkObserveTask(b *testing.B) {
	c := New(Config{}, fullSrc{}, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		observeOne(c, time.Duration(i%5000)*time.Millisecond)
	}
}

// BenchmarkObserveTaskParallel is the same from all Ps at once (the pool
// reports from many goroutines).
func BenchmarkObserveTaskParallel(b *testing.B) {
	c := New(Config{}, fullSrc{}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			observeOne(c, time.Duration(i%5000)*time.Millisecond)
			i++
		}
	})
}

// BenchmarkScrape is one /metrics rendering of a populated collector.
func BenchmarkScrape(b *testing.B) {
	c := New(Config{}, fullSrc{}, fullBroker{})
	populate(c)
	b.ReportAllocs()
	h := c.Handler()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}
}
