package main

// Interop tests over RabbitMQ: the real Python Celery client, CLI and
// worker (python3-amqp) drive the omics-worker binary with an amqp://
// broker; results stay in Redis (db amqpResultsDB). Every test runs in a
// vhost of its own, created and deleted with rabbitmqctl.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

const amqpResultsDB = testenv.RedisDBControl55 // a top-level test: never at the same time as the control matrix

// amqpEnv is the environment of a Python or Go process on vhost vh.
type amqpEnv struct{ vh, queue string }

func (e amqpEnv) env() []string {
	return []string{
		"CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/" + e.vh,
		fmt.Sprintf("CELERY_RESULT_BACKEND=redis://%s/%d", redisAddr, amqpResultsDB),
		"OMICS_TEST_QUEUE=" + e.queue,
		"PYTHONDONTWRITEBYTECODE=1",
	}
}

// requireRabbit creates a vhost (a missing RabbitMQ fails with a hint).
func requireRabbit(t *testing.T) amqpEnv {
	t.Helper()
	requireInterop(t)
	if out, err := exec.Command(pythonBin, "-c", "import amqp").CombinedOutput(); err != nil {
		t.Fatalf("python3-amqp missing: %v %s (apt-get install python3-amqp)", err, out)
	}
	testenv.NeedRabbitMQ(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	vh := "omics-it-" + hex.EncodeToString(b)
	rabbitctl(t, "add_vhost", vh)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "delete_vhost", vh).Run() })
	rabbitctl(t, "set_permissions", "-p", vh, "guest", ".*", ".*", ".*")
	return amqpEnv{vh: vh, queue: "amqpq"}
}

func rabbitctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func startGoAMQP(t *testing.T, e amqpEnv, name string, args ...string) *proc {
	t.Helper()
	all := append([]string{"worker", "--diagnostic-tasks", "-Q", e.queue, "-n", name + "@%h",
		"--result-expires", "600", "-l", "debug"}, args...)
	p := startProc(t, "go worker "+name, interopDir(t), e.env(), workerBinary(t), all...)
	p.waitFor(t, "worker ready", 1, 20*time.Second)
	return p
}

func startPyAMQP(t *testing.T, e amqpEnv, py string) *proc {
	t.Helper()
	p := startProc(t, "python worker", interopDir(t), e.env(), py,
		"-m", "celery", "-A", "omics_app", "worker", "-P", "solo", "-Q", e.queue, "-n", "py-test@%h",
		"--without-mingle", "--without-gossip", "-l", "info")
	p.waitFor(t, " ready.", 1, 60*time.Second)
	return p
}

func pyAMQP(t *testing.T, e amqpEnv, py string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), e.env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func clientAMQP(t *testing.T, e amqpEnv, py string, args ...string) map[string]any {
	t.Helper()
	out, err := pyAMQP(t, e, py, append([]string{"client.py"}, args...)...)
	if err != nil {
		t.Fatalf("client.py %v: %v\n%s", args, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("client.py %v: bad output %q", args, out)
	}
	return res
}

func idsFile(t *testing.T, res map[string]any) string {
	b, _ := json.Marshal(res)
	path := filepath.Join(t.TempDir(), "ids.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pythons are the Python interpreters to run the Celery side with: the
// system's (5.2) and, when installed, the Celery 5.5 root.
func pythons(t *testing.T) map[string]string {
	m := map[string]string{"celery52": pythonBin}
	if s, err := filepath.Abs("../../scripts/celery55.sh"); err == nil {
		if _, err := os.Stat("/var/cache/omics-worker/celery55"); err == nil {
			m["celery55"] = s
		}
	}
	return m
}

// wrap returns the argv prefix to run python with (celery55.sh python3 ...).
func pyArgv(py string) (string, []string) {
	if strings.HasSuffix(py, ".sh") {
		return py, []string{"python3"}
	}
	return py, nil
}

// TestAMQPInterop: delay/AsyncResult.get, ETA/expires, failures, retries,
// inspect ping/stats/active, control revoke, events, purge — over amqp://
// with the Python 5.2 (and 5.5 when installed) client and CLI.
func TestAMQPInterop(t *testing.T) {
	for ver, py := range pythons(t) {
		t.Run(ver, func(t *testing.T) {
			e := requireRabbit(t)
			startGoAMQP(t, e, "omics-amqp", "-c", "4", "-E")
			bin, pre := pyArgv(py)
			run := func(args ...string) string {
				out, err := pyAMQP(t, e, bin, append(pre, args...)...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				return out
			}
			for _, sc := range []string{"basic", "failure", "retry", "eta-expires"} {
				out := run("client.py", sc)
				t.Logf("%s: %s", sc, strings.TrimSpace(out))
			}
			if out := run("-m", "celery", "-A", "omics_app", "inspect", "ping", "-t", "5"); !strings.Contains(out, "pong") {
				t.Fatalf("inspect ping: %s", out)
			}
			if out := run("-m", "celery", "-A", "omics_app", "inspect", "stats", "-t", "5"); !strings.Contains(out, `"transport": "pyamqp"`) {
				t.Fatalf("inspect stats: %s", out)
			}
			if out := run("-m", "celery", "-A", "omics_app", "inspect", "active", "-t", "5"); !strings.Contains(out, "OK") {
				t.Fatalf("inspect active: %s", out)
			}
			if out := run("-m", "celery", "-A", "omics_app", "status", "-t", "5"); !strings.Contains(out, "1 node online") {
				t.Fatalf("status: %s", out)
			}
			if out := run("-m", "celery", "-A", "omics_app", "control", "revoke", "some-id", "-t", "5"); !strings.Contains(out, "revoked") {
				t.Fatalf("control revoke: %s", out)
			}
			// events: a capture sees the worker's heartbeats and task events.
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append(pre, "-m", "celery", "-A", "omics_app", "events", "--dump")...)
			cmd.Dir = interopDir(t)
			cmd.Env = append(os.Environ(), e.env()...)
			go func() { time.Sleep(3 * time.Second); _, _ = pyAMQP(t, e, bin, append(pre, "client.py", "basic")...) }()
			evout, _ := cmd.CombinedOutput()
			for _, want := range []string{"heartbeat", "task succeeded"} {
				if !strings.Contains(string(evout), want) {
					t.Errorf("celery events: no %q in:\n%s", want, evout)
				}
			}
			if out := run("-m", "celery", "-A", "omics_app", "purge", "-f"); !strings.Contains(out, "purged") {
				t.Fatalf("purge: %s", out)
			}
			qs := rabbitctl(t, "list_queues", "-p", e.vh, "name", "durable", "auto_delete", "arguments")
			t.Logf("queues:\n%s", qs)
		})
	}
}

// TestAMQPMixedFleet: a Go and a Python worker on one RabbitMQ queue; every
// task starts exactly once and both take part (client.py share).
func TestAMQPMixedFleet(t *testing.T) {
	e := requireRabbit(t)
	startGoAMQP(t, e, "omics-amqp", "-c", "2")
	startPyAMQP(t, e, pythonBin)
	res := clientAMQP(t, e, pythonBin, "share", "30", "0.2")
	t.Logf("shared: %v", res)
}

// TestAMQPCrash: SIGKILL the Go worker with tasks running and prefetched;
// RabbitMQ returns its unacked deliveries and a new worker (Go, then the
// Python worker for the rest) runs every task: 0 lost.
func TestAMQPCrash(t *testing.T) {
	e := requireRabbit(t)
	a := startGoAMQP(t, e, "omics-crash", "-c", "2", "--prefetch-multiplier", "3")
	ids := idsFile(t, clientAMQP(t, e, pythonBin, "publish", "sleep:1", "12"))
	a.waitFor(t, "Task received", 6, 20*time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	startGoAMQP(t, e, "omics-crash2", "-c", "4")
	res := clientAMQP(t, e, pythonBin, "wait-all", ids, "90")
	t.Logf("after restart: %v", res)
}

// TestAMQPConsumerTimeout sets RabbitMQ's consumer_timeout to 5 s
// (restored afterwards) and sends countdown tasks due in 20 s: parked in
// the wait queue (eta_park_after 2 s) they are never held past the
// timeout, the worker's channel is never closed, and each runs once.
func TestAMQPConsumerTimeout(t *testing.T) {
	e := requireRabbit(t)
	cur := strings.TrimSpace(rabbitctl(t, "eval", "application:get_env(rabbit, consumer_timeout)."))
	t.Logf("consumer_timeout was %s", cur)
	restore := "application:unset_env(rabbit, consumer_timeout)."
	if v, ok := strings.CutPrefix(cur, "{ok,"); ok {
		restore = fmt.Sprintf("application:set_env(rabbit, consumer_timeout, %s.", strings.TrimSuffix(v, "}")+")")
	}
	rabbitctl(t, "eval", "application:set_env(rabbit, consumer_timeout, 5000).")
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "eval", restore).Run() })
	w := startGoAMQP(t, e, "omics-ct", "-c", "2", "--broker-transport-options", `{"eta_park_after": 2}`)
	out, err := pyAMQP(t, e, pythonBin, "-c", `
import json, omics_app, diag_tasks as d
rs = [d.echo.apply_async(args=(i,), countdown=20) for i in range(4)]
print(json.dumps({"ids": [r.id for r in rs]}))`)
	if err != nil {
		t.Fatalf("%v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatal(out)
	}
	done := clientAMQP(t, e, pythonBin, "wait-all", idsFile(t, res), "120")
	t.Logf("done: %v", done)
	log := w.out.String()
	if strings.Contains(log, "connection lost") {
		t.Errorf("the worker lost its channel (consumer_timeout):\n%s", log)
	}
	if n := strings.Count(log, "ETA message parked"); n < 4 {
		t.Errorf("%d parks logged, want >= 4", n)
	}
	if n := strings.Count(log, "succeeded in"); n != 4 {
		t.Errorf("%d tasks succeeded, want exactly 4", n)
	}
	_ = errors.New
}
