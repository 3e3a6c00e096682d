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

type src struct{}

func (src) Hostname() string    { return `go@"x"` }
func (src) Stats() worker.Stats { return worker.Stats{Active: 2, Processed: 5, Concurrency: 4} }
func (src) Queues() []string    { return []string{"q"} }

type br struct{ down bool }

func (b br) QueueLengths(context.Context, string) (map[int]int, error) {
	return map[int]int{0: 3, 3: 0, 6: 1, 9: 0}, nil
}
func (b br) UnackedCount(context.Context) (int, error) { return 7, nil }
func (b br) Ping(context.Context) error {
	if b.down {
		return errors.New("down")
	}
	return nil
}

func TestExposition(t *testing.T) {
	c := New(Config{Version: "v1"}, src{}, br{})
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskReceived, Name: "a", Task: "a"})
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, Name: "a", Task: "a", Runtime: 30 * time.Millisecond})
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskFailed, Name: "b", Task: "b", Runtime: 2 * time.Second})
	c.RedisError("fetch")
	out := scrape(t, c)
	for _, want := range []string{
		`omics_worker_info{hostname="go@\"x\"",version="v1"} 1`,
		`omics_worker_tasks_active 2`,
		`omics_worker_tasks_processed_total 5`,
		`omics_worker_tasks_received_total{task="a"} 1`,
		`omics_worker_tasks_succeeded_total{task="a"} 1`,
		`omics_worker_tasks_failed_total{task="b"} 1`,
		`omics_worker_task_runtime_seconds_bucket{task="a",le="0.025"} 0`,
		`omics_worker_task_runtime_seconds_bucket{task="a",le="0.05"} 1`,
		`omics_worker_task_runtime_seconds_bucket{task="b",le="+Inf"} 1`,
		`omics_worker_task_runtime_seconds_count{task="b"} 1`,
		`omics_worker_queue_length{priority="0",queue="q"} 3`,
		`omics_worker_queue_length{priority="6",queue="q"} 1`,
		`omics_worker_unacked_messages 7`,
		`omics_worker_redis_errors_total{op="fetch"} 1`,
		"# TYPE omics_worker_task_runtime_seconds histogram",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestProbes(t *testing.T) {
	ready := false
	c := New(Config{Ready: func() bool { return ready }}, src{}, br{})
	h := c.Handler()
	get := func(path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code
	}
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("not-ready probes")
	}
	ready = true
	if get("/readyz") != 200 || get("/metrics") != 200 {
		t.Fatal("ready probes")
	}
	c2 := New(Config{}, src{}, br{down: true})
	rec := httptest.NewRecorder()
	c2.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 {
		t.Fatal("redis down must be not ready")
	}
}
