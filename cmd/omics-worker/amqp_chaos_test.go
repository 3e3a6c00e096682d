package main

// Chaos test over RabbitMQ (issue 12): TestChaos with an amqp:// broker.
// diag.progress tasks published over AMQP (amqptransport, publisher
// confirms) in a private vhost, two omics-worker processes SIGKILLed at
// random moments, and, instead of a Redis restart, every connection of the
// vhost closed by the server (rabbitmqctl close_all_connections -p <vhost>;
// the shared RabbitMQ server itself is never restarted). Results go to a
// private redis-server (startPrivateRedis, DB 1). At the end every task has
// reached SUCCESS, the queue holds no ready and no unacknowledged message;
// the figures (sent, succeeded, duplicates executed, lost, time) are
// printed.
//
// Short form (default, CI): 1,000 tasks, 3 SIGKILLs, one connection kill.
// Long form: OMICS_CHAOS=long (make chaos): 10,000 tasks, 12 SIGKILLs.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/loadgen"
	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/amqptransport"
)

func (e amqpEnv) brokerURL() string { return "amqp://guest:guest@127.0.0.1:5672/" + e.vh }

// amqpQueueCounts returns the ready and unacknowledged message counts of
// queue in the vhost (rabbitmqctl list_queues).
func amqpQueueCounts(t *testing.T, e amqpEnv, queue string) (ready, unacked int) {
	t.Helper()
	out := rabbitctl(t, "list_queues", "-q", "--no-table-headers", "-p", e.vh, "name", "messages_ready", "messages_unacknowledged")
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == queue {
			ready, _ = strconv.Atoi(f[1])
			unacked, _ = strconv.Atoi(f[2])
			return ready, unacked
		}
	}
	t.Fatalf("queue %s not listed in vhost %s:\n%s", queue, e.vh, out)
	return 0, 0
}

// publishAMQP publishes a diag.progress task per id over AMQP (four
// publishers in parallel, each waiting for its confirms).
func publishAMQP(t *testing.T, e amqpEnv, ids []string) {
	t.Helper()
	ctx := context.Background()
	broker, err := amqptransport.NewBroker(e.brokerURL(), amqptransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 4 {
				raw, err := protocol.EncodeTask(&protocol.TaskMessage{ID: ids[i], Task: "diag.progress",
					Kwargs: map[string]any{"steps": 2, "delay": 0.015}}, protocol.PublishOptions{Queue: e.queue})
				if err == nil {
					err = broker.Publish(ctx, e.queue, 0, raw)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestAMQPChaos(t *testing.T) {
	n, kills, conc := 1000, 3, "4"
	if os.Getenv("OMICS_CHAOS") == "long" {
		n, kills, conc = 10_000, 12, "8"
	}
	e := requireRabbit(t)
	e.queue = "chaos"
	rs := startPrivateRedis(t)
	workerBinary(t)

	began := time.Now()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = pyfmt.NewUUID4().String()
	}
	publishAMQP(t, e, ids)
	t.Logf("published %d tasks over AMQP in %s", n, time.Since(began).Round(time.Millisecond))

	env := []string{"CELERY_BROKER_URL=" + e.brokerURL(), "CELERY_RESULT_BACKEND=" + rs.url(1), "OMICS_TEST_QUEUE=" + e.queue}
	ws := &chaosWorkers{t: t, env: env, args: []string{"--diagnostic-tasks", "-Q", e.queue, "-c", conc,
		"--result-expires", "3600", "--without-mingle", "--without-heartbeat", "--shutdown-timeout", "5", "-l", "info"}}
	ws.start(0)
	ws.start(1)

	// Kills at fixed fractions of the work, on a random worker; the
	// connection kill halfway.
	killed := chaosLoop(t, rs, ws, ids, kills, began, "close of the vhost's RabbitMQ connections", func() string {
		return strings.TrimSpace(rabbitctl(t, "close_all_connections", "-p", e.vh, "chaos"))
	})
	elapsed := time.Since(began)

	lost := 0
	for i, s := range rs.states(t, ids) {
		if s != protocol.StateSuccess {
			lost++
			if lost <= 10 {
				t.Errorf("task %s: state %q", ids[i], s)
			}
		}
	}
	runs, dup := 0, 0
	for id, c := range ws.executions("diag.progress") {
		runs += c
		dup += c - 1
		if c > 1 {
			t.Logf("task %s completed %d times (in processes %v)", id, c, ws.completedIn("diag.progress", id))
		}
	}
	reconnects := 0
	for _, p := range ws.all {
		reconnects += strings.Count(p.out.String(), "connection lost")
	}
	fmt.Printf("chaos (amqp): tasks sent %d, succeeded %d, executions %d, duplicates executed %d, lost %d, "+
		"SIGKILLs %d, connection kills 1 (%d worker reconnects logged), worker processes %d, time %.1fs\n",
		n, n-lost, runs, dup, lost, killed, reconnects, len(ws.all), elapsed.Seconds())
	if lost > 0 {
		t.Fatalf("%d tasks lost", lost)
	}
	// Nothing left behind: no ready message, and every delivery acked.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready, unacked := amqpQueueCounts(t, e, e.queue)
		if ready == 0 && unacked == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("queue %s: %d ready, %d unacknowledged messages left", e.queue, ready, unacked)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAMQPLoadgen: `omics-worker loadgen` publishes over amqp:// (the
// RabbitMQ column of make bench) to a Go worker, results in a private
// Redis; every task is counted, the worker's CPU is measured, and
// --redis-stats is refused on an AMQP broker.
func TestAMQPLoadgen(t *testing.T) {
	e := requireRabbit(t)
	e.queue = "lgq"
	rs := startPrivateRedis(t)
	env := []string{"CELERY_BROKER_URL=" + e.brokerURL(), "CELERY_RESULT_BACKEND=" + rs.url(1), "OMICS_TEST_QUEUE=" + e.queue}
	w := startProc(t, "go worker", interopDir(t), env, workerBinary(t), "worker", "--diagnostic-tasks", "-Q", e.queue,
		"-c", "2", "--prefetch-multiplier", "1", "--without-mingle", "--without-heartbeat", "-l", "info")
	w.waitFor(t, "worker ready", 1, 30*time.Second)
	cfg := loadgen.Config{BrokerURL: e.brokerURL(), BackendURL: rs.url(1), Queue: e.queue, N: 300, Batch: 64,
		Timeout: 2 * time.Minute, WatchPID: w.cmd.Process.Pid}
	for _, tt := range []struct {
		name   string
		task   string
		kwargs map[string]any
	}{
		{"noop", "diag.noop", nil},
		{"progress", "diag.progress", map[string]any{"steps": 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Task, c.Kwargs, c.Label = tt.task, tt.kwargs, tt.name
			rep, err := loadgen.Run(context.Background(), c)
			if err != nil {
				t.Fatalf("loadgen.Run: %v", err)
			}
			if rep.Done != c.N || rep.Missing != 0 || rep.Failures != 0 {
				t.Fatalf("done %d, missing %d, failures %d; want %d done", rep.Done, rep.Missing, rep.Failures, c.N)
			}
			if rep.TasksPerS <= 0 || rep.WorkerCPUusPerTask <= 0 || rep.LastResult < rep.FirstEnqueue {
				t.Errorf("throughput or CPU not measured: %+v", rep)
			}
			t.Logf("%s over AMQP: %.0f tasks/s, worker CPU %.0f us/task, publish %.3fs", tt.name, rep.TasksPerS,
				rep.WorkerCPUusPerTask, rep.PublishS)
		})
	}
	c := cfg
	c.RedisStats = true
	if _, err := loadgen.Run(context.Background(), c); err == nil || !strings.Contains(err.Error(), "redis-stats") {
		t.Errorf("--redis-stats on an AMQP broker: err %v, want a refusal", err)
	}
	if ready, unacked := amqpQueueCounts(t, e, e.queue); ready != 0 || unacked != 0 {
		t.Errorf("queue: %d ready, %d unacknowledged left", ready, unacked)
	}
}
