package main

// Interop tests: the real Python Celery drives the omics-worker binary over
// the real Redis, once per installed Celery (pyruntime_test.go: celery 5.2
// from /usr/bin/python3, celery 5.5 from the scripts/celery55.sh root).
// The Python side lives in testdata/interop/ (omics_app.py: an app
// configured like Omicsomics' celery_app.py; client.py: the scenarios;
// diag_tasks.py: Python twins of the diag.* tasks).
//
// Redis databases: testenv.RedisDBScenario* for the scenario tests,
// testenv.RedisDBCrash* for the crash tests (their short visibility
// timeouts must not touch other tests' messages). Every test uses its own
// queue names.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/internal/testenv"
)

const (
	pythonBin = testenv.PythonBin
	redisAddr = testenv.RedisAddr
)

type redisDBs struct{ broker, backend int }

var (
	scenarioDBs = redisDBs{testenv.RedisDBScenario, testenv.RedisDBScenarioResults}
	crashDBs    = redisDBs{testenv.RedisDBCrash, testenv.RedisDBCrashResults}
)

func (d redisDBs) env(queue string) []string {
	return []string{
		fmt.Sprintf("CELERY_BROKER_URL=redis://%s/%d", redisAddr, d.broker),
		fmt.Sprintf("CELERY_RESULT_BACKEND=redis://%s/%d", redisAddr, d.backend),
		"OMICS_TEST_QUEUE=" + queue,
		"PYTHONDONTWRITEBYTECODE=1",
	}
}

// requireInterop skips under -short and fails with a hint when Redis or the
// Python Celery is missing.
func requireInterop(t *testing.T) {
	t.Helper()
	testenv.NeedRedis(t, scenarioDBs.broker)
	testenv.NeedPython(t)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// workerBinary builds omics-worker once per test process.
func workerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "omics-worker-bin")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "omics-worker")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func interopDir(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "interop"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// uniqueQueue returns a queue name no other test (or run) uses; its
// binding sets (and any leftover list) are deleted when the test ends.
func uniqueQueue(t *testing.T, tag string) string {
	q := fmt.Sprintf("it_%s_%d_%d", tag, os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		for _, db := range []int{scenarioDBs.broker, crashDBs.broker, controlDBs.broker, 12} {
			for _, suffix := range []string{"", "_py"} {
				name := q + suffix
				testenv.RedisDel(db, "_kombu.binding."+name, name, name+"\x06\x163", name+"\x06\x166", name+"\x06\x169")
			}
		}
	})
	return q
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a worker process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// waitFor waits until the output contains s n times.
func (p *proc) waitFor(t *testing.T, s string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Count(p.out.String(), s) >= n {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited while waiting for %q:\n%s", p.name, s, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s: %q not seen %d times within %s:\n%s", p.name, s, n, timeout, p.out.String())
}

// stop sends sig and waits up to timeout, then kills.
func (p *proc) stop(sig syscall.Signal, timeout time.Duration) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func startProc(t *testing.T, name, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name, dir, env, exec.Command(bin, args...))
}

// startPyProc starts python3 args... of the runtime py (a Python worker,
// celery events, ...).
func startPyProc(t *testing.T, py pyRuntime, name, dir string, env []string, args ...string) *proc {
	t.Helper()
	return startCmd(t, name+" ("+py.Name()+")", dir, env, py.Command(args...))
}

func startCmd(t *testing.T, name, dir string, env []string, cmd *exec.Cmd) *proc {
	t.Helper()
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 15*time.Second)
		// Suite-wide guard (issue 9 #5): no process a test starts may
		// log a test password (the e2e DATABASE_URL carries one).
		masktest.Check(t, name+" output", out.String())
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", name, out.String())
		}
	})
	return p
}

// startGoWorker starts omics-worker worker --diagnostic-tasks on queue and
// waits until it consumes.
func startGoWorker(t *testing.T, dbs redisDBs, queue string, args ...string) *proc {
	t.Helper()
	all := append([]string{"worker", "--diagnostic-tasks", "-Q", queue, "-n", uniqueNode("omics-test"),
		"--result-expires", "600", "-l", "debug"}, args...)
	p := startProc(t, "go worker", interopDir(t), dbs.env(queue), workerBinary(t), all...)
	p.waitFor(t, "worker ready", 1, 20*time.Second)
	return p
}

// startPyWorker starts a Python Celery worker (solo pool) on queue.
func startPyWorker(t *testing.T, py pyRuntime, dbs redisDBs, queue string, env ...string) *proc {
	t.Helper()
	p := startPyProc(t, py, "python worker", interopDir(t), append(dbs.env(queue), env...),
		"-m", "celery", "-A", "omics_app", "worker", "-P", "solo", "-Q", queue, "-n", uniqueNode("py-test"),
		"--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info")
	p.waitFor(t, " ready.", 1, 60*time.Second)
	return p
}

// runClient runs a client.py scenario and decodes its JSON line.
func runClient(t *testing.T, py pyRuntime, dbs redisDBs, queue string, scenario string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := py.CommandContext(ctx, append([]string{"client.py", scenario}, args...)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), dbs.env(queue)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s client.py %s: %v\nstdout:\n%s\nstderr:\n%s", py.Name(), scenario, err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("client.py %s: bad output %q: %v", scenario, out, err)
	}
	return res
}

// clientToFile runs a publishing scenario and saves its JSON for a later
// check scenario.
func clientToFile(t *testing.T, py pyRuntime, dbs redisDBs, queue, scenario string, args ...string) string {
	t.Helper()
	res := runClient(t, py, dbs, queue, scenario, args...)
	b, _ := json.Marshal(res)
	path := filepath.Join(t.TempDir(), "ids.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInteropScenarios runs the client scenarios against one Go worker.
func TestInteropScenarios(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "scen")
		startGoWorker(t, scenarioDBs, q, "-c", "4")
		for _, sc := range []string{"basic", "progress", "failure", "pickle", "unknown", "retry", "eta-expires", "time-limits"} {
			t.Run(sc, func(t *testing.T) {
				t.Parallel()
				res := runClient(t, py, scenarioDBs, q, sc)
				t.Logf("%s: %v", sc, res)
			})
		}
	})
}

// TestInteropEarlyAck: the same client view with --no-acks-late (the ack
// and STARTED go together at task start).
func TestInteropEarlyAck(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "early")
		startGoWorker(t, scenarioDBs, q, "-c", "2", "--no-acks-late")
		for _, sc := range []string{"basic", "failure", "retry"} {
			runClient(t, py, scenarioDBs, q, sc)
		}
	})
}

// TestInteropPriorities: messages queued before the worker starts are served
// in kombu's priority order (steps 0,3,6,9; FIFO within a step) — the
// order of both kombu 5.2 and kombu 5.5 (whose client pushes priority
// messages the same way; see docs/protocol.md).
func TestInteropPriorities(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "prio")
		ids := clientToFile(t, py, scenarioDBs, q, "priorities-publish")
		startGoWorker(t, scenarioDBs, q, "-c", "1", "--prefetch-multiplier", "1")
		runClient(t, py, scenarioDBs, q, "check-order", ids)
	})
}

// TestInteropSharedQueue: a Python worker and the Go worker consume the
// same queue; both take part and every task starts exactly once.
func TestInteropSharedQueue(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "share")
		startPyWorker(t, py, scenarioDBs, q)
		startGoWorker(t, scenarioDBs, q, "-c", "1")
		res := runClient(t, py, scenarioDBs, q, "share", "30", "0.1")
		t.Logf("tasks per worker: %v; runs of retried tasks per worker: %v", res["per_worker"], res["flaky_runs_per_worker"])
	})
}

// TestInteropForwardUnknown: with --forward-unknown, a task the Go worker
// does not have is moved unchanged to a queue a Python worker consumes.
func TestInteropForwardUnknown(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "fwd")
		pyQ := q + "_py"
		startPyWorker(t, py, scenarioDBs, pyQ)
		startGoWorker(t, scenarioDBs, q, "-c", "1", "--forward-unknown", pyQ)
		runClient(t, py, scenarioDBs, q, "forward")
	})
}

// TestInteropRetryHandoff: the Go worker's retry message (same id,
// retries+1, eta) is run by a Python worker after the Go worker's warm
// shutdown restored it from its ETA timer.
func TestInteropRetryHandoff(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "handoff")
		g := startGoWorker(t, scenarioDBs, q, "-c", "1")
		ids := clientToFile(t, py, scenarioDBs, q, "retry-handoff-start")
		g.waitFor(t, "Task scheduled for its ETA", 1, 20*time.Second)
		g.stop(syscall.SIGTERM, 20*time.Second)
		if !strings.Contains(g.out.String(), "Restoring 1 unacknowledged message(s)") {
			t.Fatalf("the ETA-waiting retry was not restored at shutdown:\n%s", g.out.String())
		}
		startPyWorker(t, py, scenarioDBs, q)
		runClient(t, py, scenarioDBs, q, "retry-handoff-finish", ids)
	})
}

// TestInteropColdShutdown: SIGTERM twice while a task runs: the worker
// cancels it, restores its message and exits; another worker runs it.
func TestInteropColdShutdown(t *testing.T) {
	forEachCelery(t, true, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "cold")
		g := startGoWorker(t, scenarioDBs, q, "-c", "1")
		ids := clientToFile(t, py, scenarioDBs, q, "publish", "sleep:2", "1")
		g.waitFor(t, "Task received", 1, 20*time.Second)
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		g.waitFor(t, "warm shutdown", 1, 10*time.Second)
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("worker did not exit after the second signal:\n%s", g.out.String())
		}
		if out := g.out.String(); !strings.Contains(out, "cold shutdown") || !strings.Contains(out, "message restored") ||
			strings.Contains(out, "succeeded in") {
			t.Fatalf("expected a cold shutdown restoring the running task:\n%s", out)
		}
		startGoWorker(t, scenarioDBs, q, "-c", "1")
		runClient(t, py, scenarioDBs, q, "wait-all", ids, "30")
	})
}

// crashAndKill starts a Go worker that prefetches and runs sleep tasks, waits
// until it holds several of them, and SIGKILLs it. It returns the ids file.
func crashAndKill(t *testing.T, py pyRuntime, q string) string {
	t.Helper()
	a := startGoWorker(t, crashDBs, q, "-c", "2", "--prefetch-multiplier", "3",
		"--visibility-timeout", "2", "--restore-interval", "0.5")
	ids := clientToFile(t, py, crashDBs, q, "publish", "sleep:1", "8")
	// Two running + four prefetched: six messages held, none finished.
	a.waitFor(t, "Task received", 6, 20*time.Second)
	if n := strings.Count(a.out.String(), "succeeded in"); n > 0 {
		t.Logf("%d tasks finished before the kill", n)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	return ids
}

// The crash tests run the versions one after the other: a restoring
// worker takes every message of the crash DBs older than the (short)
// visibility timeout, the other version's included.

// TestCrashGoWorkerRestartedGo: SIGKILL the Go worker while it holds
// messages; a restarted Go worker restores them after the (short)
// visibility timeout and runs every task.
func TestCrashGoWorkerRestartedGo(t *testing.T) {
	forEachCelery(t, false, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "crashgo")
		ids := crashAndKill(t, py, q)
		startGoWorker(t, crashDBs, q, "-c", "2", "--visibility-timeout", "2", "--restore-interval", "0.5")
		res := runClient(t, py, crashDBs, q, "wait-all", ids, "60")
		t.Logf("after restart: %v", res)
	})
}

// TestCrashGoWorkerPythonRecovers: same crash; a Python worker with a short
// visibility_timeout restores the Go worker's messages and runs them.
func TestCrashGoWorkerPythonRecovers(t *testing.T) {
	forEachCelery(t, false, func(t *testing.T, py pyRuntime) {
		q := uniqueQueue(t, "crashpy")
		ids := crashAndKill(t, py, q)
		time.Sleep(2500 * time.Millisecond) // let the held messages age past the visibility timeout
		startPyWorker(t, py, crashDBs, q, "OMICS_TEST_VISIBILITY=2")
		res := runClient(t, py, crashDBs, q, "wait-all", ids, "90")
		t.Logf("python recovered: %v", res)
	})
}
