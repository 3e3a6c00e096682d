package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/worker"
)

// fullSrc is a Source with every Stats field set.
type fullSrc struct{}

func (fullSrc) Hostname() string { return `go@"x"\y` }
func (fullSrc) Stats() worker.Stats {
	return worker.Stats{Uptime: 12500 * time.Millisecond, Active: 2, Processed: 1234567, Concurrency: 4, PrefetchCount: 16}
}
func (fullSrc) Queues() []string { return []string{"file_processing", "broken", "celery"} }

// fullBroker answers for every queue but "broken".
type fullBroker struct{}

func (fullBroker) QueueLengths(_ context.Context, q string) (map[int]int, error) {
	if q == "broken" {
		return nil, errors.New("llen failed")
	}
	return map[int]int{0: 3, 3: 0, 6: 1, 9: 1000000}, nil
}
func (fullBroker) UnackedCount(context.Context) (int, error) { return 7, nil }
func (fullBroker) Ping(context.Context) error                { return nil }

// populate gives c one or more samples in every metric family, with
// label values that need escaping or cutting and runtimes in the first,
// a middle and past the last bucket.
func populate(c *Collector) {
	tasks := []string{"a", `t."q"\x`, strings.Repeat("é", 150), ""}
	types := []string{worker.EventTaskReceived, worker.EventTaskSucceeded, worker.EventTaskFailed,
		worker.EventTaskRetried, worker.EventTaskRevoked}
	runtimes := []time.Duration{time.Millisecond, 30 * time.Millisecond, 2 * time.Second, 2 * time.Hour, 0}
	for i, task := range tasks {
		for j, typ := range types {
			ev := worker.TaskEvent{Type: typ, Name: "shadow." + task, Task: task, Runtime: runtimes[(i+j)%len(runtimes)]}
			for range i + j + 1 {
				c.ObserveTask(ev)
			}
		}
	}
	for i, r := range append(append([]string(nil), rejectReasons...), "some new reason") {
		for range i + 1 {
			c.ObserveReject(r)
		}
	}
	c.RedisError("fetch")
	c.RedisError("ack")
	c.RedisError("ack")
}

// scrape GETs /metrics from c's handler as a plain client would (text
// exposition, no compression).
func scrape(t testing.TB, c *Collector) string {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}
