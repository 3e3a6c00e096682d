package main

// Lease test (issue 6): with a 3 s visibility timeout, a 10 s task on
// omics-worker runs exactly once although a Python worker with the same
// 3 s visibility_timeout consumes the same queue. The Python worker starts
// after our worker has held the message for more than 3 s, so its start-up
// restore_visible scan would hand the message to itself if our worker did
// not refresh the message's unacked_index score (the lease). Then the
// other half: after a SIGKILL of our worker while it runs a task, nothing
// refreshes the lease any more, and a Python worker's start-up scan
// restores the message and runs it again.
//
// Redis: hostileDB (testenv.RedisDBHostile) of the shared server, a unique queue. Once per Celery
// version, one after the other (a Python worker's start-up scan restores
// every stale message of the DB, the other version's included).

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

func TestLeaseLongTaskRunsOnce(t *testing.T) {
	forEachCelery(t, false, testLeaseLongTaskRunsOnce)
}

func testLeaseLongTaskRunsOnce(t *testing.T, rt pyRuntime) {
	dbs := redisDBs{hostileDB, hostileDB}
	q := fmt.Sprintf("lease_%d_%d", time.Now().UnixNano()%1e9, time.Now().Unix()%1000)
	t.Cleanup(func() {
		testenv.RedisDel(hostileDB, "_kombu.binding."+q, q, q+"\x06\x163", q+"\x06\x166", q+"\x06\x169")
	})
	ctx := context.Background()
	broker, err := redistransport.NewBroker(fmt.Sprintf("redis://%s/%d", redisAddr, hostileDB), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	backend, err := redistransport.NewResultBackend(fmt.Sprintf("redis://%s/%d", redisAddr, hostileDB), redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	tags := map[string]string{}
	publish := func(seconds float64) string {
		id := pyfmt.NewUUID4().String()
		raw, err := protocol.EncodeTask(&protocol.TaskMessage{ID: id, Task: "diag.sleep",
			Kwargs: map[string]any{"seconds": seconds}}, protocol.PublishOptions{Queue: q})
		if err != nil {
			t.Fatal(err)
		}
		if err := broker.Publish(ctx, q, 0, raw); err != nil {
			t.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		tags[id] = env.Properties.DeliveryTag
		t.Cleanup(func() { testenv.RedisDel(hostileDB, "celery-task-meta-"+id) })
		return id
	}
	waitState := func(id, state string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			m, err := backend.Get(ctx, id)
			if err == nil && m != nil && m.Status == state {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s: state %v, want %s", id, m, state)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 1. Our worker holds a 10 s task longer than the visibility timeout
	// while a Python worker starts and scans.
	g := startGoWorker(t, dbs, q, "-c", "1", "--visibility-timeout", "3", "--restore-interval", "1",
		"--without-mingle", "--without-heartbeat")
	id1 := publish(10)
	waitState(id1, protocol.StateStarted, 20*time.Second)
	time.Sleep(4 * time.Second) // held > 3 s: only the lease keeps it ours
	// The lease is what protects it: its unacked_index score is recent
	// although the message was fetched more than 3 s ago.
	c, err := redigo.Dial("tcp", redisAddr, redigo.DialDatabase(hostileDB))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	score, err := redigo.Float64(c.Do("ZSCORE", "unacked_index", tags[id1]))
	if err != nil {
		t.Fatalf("the running task's message is not in unacked_index: %v", err)
	}
	if age := float64(time.Now().UnixMicro())/1e6 - score; age > 3 {
		t.Fatalf("unacked_index score is %.1f s old: the lease was not refreshed", age)
	}
	py := startPyWorker(t, rt, dbs, q, "OMICS_TEST_VISIBILITY=3")
	waitState(id1, protocol.StateSuccess, 30*time.Second)
	// The worker logs before it stores, but its output reaches g.out
	// through a pipe: wait for the line rather than read it once.
	g.waitFor(t, "diag.sleep["+id1+"] succeeded", 1, 30*time.Second)
	goRuns := strings.Count(g.out.String(), "diag.sleep["+id1+"] succeeded")
	pyRuns := strings.Count(py.out.String(), id1)
	t.Logf("10 s task: %d run(s) on omics-worker, %d log line(s) on the Python worker", goRuns, pyRuns)
	if goRuns != 1 || pyRuns != 0 {
		t.Fatalf("the long task ran %d time(s) here and appeared %d time(s) in the Python worker's log; want exactly once, here", goRuns, pyRuns)
	}
	py.stop(syscall.SIGTERM, 15*time.Second)

	// 2. SIGKILL our worker while it runs a task: its lease stops, and a
	// Python worker's start-up scan restores the message and runs it.
	id2 := publish(3)
	waitState(id2, protocol.StateStarted, 20*time.Second)
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.done
	time.Sleep(3500 * time.Millisecond) // past the visibility timeout
	py2 := startPyWorker(t, rt, dbs, q, "OMICS_TEST_VISIBILITY=3")
	waitState(id2, protocol.StateSuccess, 30*time.Second)
	if strings.Contains(g.out.String(), "diag.sleep["+id2+"] succeeded") {
		t.Fatal("the killed worker finished the task")
	}
	py2.waitFor(t, "diag.sleep["+id2+"] succeeded", 1, 10*time.Second)
}
