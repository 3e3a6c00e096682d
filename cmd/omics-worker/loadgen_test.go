package main

// Tests of the loadgen subcommand. The integration test runs the real worker
// runtime in-process (runWorker with --diagnostic-tasks) against the real
// Redis, database testenv.RedisDBLoadgen (the benchmark harness's), with a unique queue
// per test; it checks counts only, never timings.

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/loadgen"
	"github.com/omicsomics/omics-worker/internal/testenv"
)

var loadgenRedisURL = testenv.RedisURL(testenv.RedisDBLoadgen)

func requireLoadgenRedis(t *testing.T) {
	t.Helper()
	testenv.NeedRedis(t, testenv.RedisDBLoadgen)
}

// startInprocWorker runs the worker subcommand in-process on queue and
// returns a stop function that shuts it down (warm) and waits.
func startInprocWorker(t *testing.T, queue string) func() {
	t.Helper()
	stop := runInprocWorker("--diagnostic-tasks", "-Q", queue, "-c", "2",
		"-b", loadgenRedisURL, "--result-backend", loadgenRedisURL, "-l", "warning",
		"--shutdown-timeout", "10", "--without-mingle")
	return func() {
		if code, out := stop(); code != 0 {
			t.Errorf("worker exited with %d:\n%s", code, out)
		}
	}
}

// runInprocWorker runs the worker subcommand in-process with args; stop
// shuts it down (warm), waits, and returns its exit code and output.
func runInprocWorker(args ...string) (stop func() (code int, out string)) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- runWorker(ctx, args, &out, &out) }()
	return func() (int, string) {
		cancel()
		code := <-done
		return code, out.String()
	}
}

// cleanupLoadgenKeys deletes the queue's lists and the result keys of a run.
func cleanupLoadgenKeys(t testing.TB, queue, idPrefix string) {
	t.Helper()
	c, err := redigo.Dial("tcp", testenv.RedisAddr, redigo.DialDatabase(testenv.RedisDBLoadgen))
	if err != nil {
		t.Logf("cleanup: %v", err)
		return
	}
	defer c.Close()
	_, _ = c.Do("DEL", queue, queue+"\x06\x163", queue+"\x06\x166", queue+"\x06\x169", "_kombu.binding."+queue)
	if idPrefix == "" {
		return
	}
	cursor := "0"
	for {
		vals, err := redigo.Values(c.Do("SCAN", cursor, "MATCH", "celery-task-meta-"+idPrefix+"*", "COUNT", 1000))
		if err != nil || len(vals) != 2 {
			return
		}
		cursor, _ = redigo.String(vals[0], nil)
		keys, _ := redigo.Strings(vals[1], nil)
		if len(keys) > 0 {
			args := make([]any, len(keys))
			for i, k := range keys {
				args[i] = k
			}
			_, _ = c.Do("DEL", args...)
		}
		if cursor == "0" {
			return
		}
	}
}

func TestLoadgenCountsResults(t *testing.T) {
	requireLoadgenRedis(t)
	queue := fmt.Sprintf("lg_counts_%d_%d", os.Getpid(), time.Now().UnixNano())
	stop := startInprocWorker(t, queue)
	defer stop()

	tests := []struct {
		name         string
		task         string
		args         []any
		kwargs       map[string]any
		n            int
		rate         float64
		wantFailures int
	}{
		{name: "noop", task: "diag.noop", n: 300},
		{name: "progress", task: "diag.progress", kwargs: map[string]any{"steps": 3}, n: 60},
		{name: "fail", task: "diag.fail", args: []any{"boom"}, n: 25, wantFailures: 25},
		{name: "rated", task: "diag.noop", n: 40, rate: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := t.TempDir() + "/ready"
			rep, err := loadgen.Run(context.Background(), loadgen.Config{
				BrokerURL: loadgenRedisURL, BackendURL: loadgenRedisURL, Queue: queue,
				Task: tt.task, Args: tt.args, Kwargs: tt.kwargs, N: tt.n, Rate: tt.rate,
				Batch: 64, Timeout: 2 * time.Minute, WatchPID: os.Getpid(),
				RedisStats: true, ReadyFile: ready, Label: tt.name,
			})
			if rep != nil {
				defer cleanupLoadgenKeys(t, queue, rep.IDPrefix)
			}
			if err != nil {
				t.Fatalf("loadgen.Run: %v", err)
			}
			if rep.N != tt.n || rep.Done != tt.n || rep.Missing != 0 || rep.Failures != tt.wantFailures {
				t.Fatalf("report n=%d done=%d missing=%d failures=%d; want n=done=%d, missing 0, failures %d",
					rep.N, rep.Done, rep.Missing, rep.Failures, tt.n, tt.wantFailures)
			}
			if rep.Latency == nil || rep.Latency.Max < rep.Latency.P50 || rep.TasksPerS <= 0 {
				t.Errorf("latency/throughput not computed: %+v, %v tasks/s", rep.Latency, rep.TasksPerS)
			}
			if rep.LastResult < rep.FirstEnqueue {
				t.Errorf("last result %d before first enqueue %d", rep.LastResult, rep.FirstEnqueue)
			}
			if rep.RSSPeakKiB <= 0 || rep.Redis == nil || rep.Redis.Reads <= 0 {
				t.Errorf("RSS or Redis stats missing: rss %d, redis %+v", rep.RSSPeakKiB, rep.Redis)
			}
			if _, err := os.Stat(ready); err != nil {
				t.Errorf("ready file: %v", err)
			}
		})
	}
}

// Without a worker nothing completes: loadgen reports every task missing and
// returns an error instead of waiting forever.
func TestLoadgenReportsMissing(t *testing.T) {
	requireLoadgenRedis(t)
	queue := fmt.Sprintf("lg_missing_%d_%d", os.Getpid(), time.Now().UnixNano())
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		BrokerURL: loadgenRedisURL, BackendURL: loadgenRedisURL, Queue: queue,
		N: 7, Timeout: 200 * time.Millisecond,
	})
	if rep != nil {
		defer cleanupLoadgenKeys(t, queue, rep.IDPrefix)
	}
	if err == nil || rep == nil || rep.Missing != 7 || rep.Done != 0 {
		t.Fatalf("runLoad without a worker: rep %+v, err %v; want 7 missing and an error", rep, err)
	}
}

// A result stored while nobody listened (as after a lost pub/sub message) is
// found by the MGET sweep and counted as missed_pubsub.
func TestLoadgenSweepsMissedResults(t *testing.T) {
	requireLoadgenRedis(t)
	queue := fmt.Sprintf("lg_sweep_%d_%d", os.Getpid(), time.Now().UnixNano())
	c, err := redigo.Dial("tcp", testenv.RedisAddr, redigo.DialDatabase(testenv.RedisDBLoadgen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A fake worker that pops the messages and SETs a SUCCESS result without
	// publishing it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			v, err := redigo.ByteSlices(c.Do("BRPOP", queue, 1))
			if err != nil || len(v) != 2 {
				continue
			}
			id := headerID(v[1])
			_, _ = c.Do("SET", "celery-task-meta-"+id, `{"status": "SUCCESS", "result": null, "task_id": "`+id+`"}`, "EX", 600)
		}
	}()
	rep, err := loadgen.Run(context.Background(), loadgen.Config{
		BrokerURL: loadgenRedisURL, BackendURL: loadgenRedisURL, Queue: queue,
		N: 3, Timeout: 1500 * time.Millisecond,
	})
	cancel()
	if rep != nil {
		defer cleanupLoadgenKeys(t, queue, rep.IDPrefix)
	}
	if err != nil || rep.Done != 3 || rep.MissedPubsub != 3 || rep.Missing != 0 {
		t.Fatalf("rep %+v, err %v; want 3 done, all seen by the sweep", rep, err)
	}
}

// headerID extracts headers.id from an envelope without the protocol package
// (enough for the fake worker above).
func headerID(env []byte) string {
	i := bytes.Index(env, []byte(`"id": "`))
	if i < 0 {
		i = bytes.Index(env, []byte(`"id":"`))
		if i < 0 {
			return ""
		}
		i += len(`"id":"`)
	} else {
		i += len(`"id": "`)
	}
	j := bytes.IndexByte(env[i:], '"')
	if j < 0 {
		return ""
	}
	return string(env[i : i+j])
}

// BenchmarkWorkerLoad runs the worker runtime in-process (-c 2) and feeds it
// b.N tasks with loadgen, for CPU profiles of the whole path:
//
//	go test -run '^$' -bench WorkerLoad -benchtime 20000x -cpuprofile cpu.out ./cmd/omics-worker/
//	go tool pprof -top cpu.out
//
// OMICS_BENCH_REDIS_URL selects the Redis (default testenv.RedisDBLoadgen
// on the shared server);
// OMICS_BENCH_TASK / OMICS_BENCH_KWARGS the task (default diag.noop).
func BenchmarkWorkerLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Redis")
	}
	url := cmp.Or(os.Getenv("OMICS_BENCH_REDIS_URL"), loadgenRedisURL)
	task := cmp.Or(os.Getenv("OMICS_BENCH_TASK"), "diag.noop")
	_, kwargs, err := loadgen.ParseArgs("[]", cmp.Or(os.Getenv("OMICS_BENCH_KWARGS"), "{}"))
	if err != nil {
		b.Fatal(err)
	}
	queue := fmt.Sprintf("lg_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- runWorker(ctx, []string{"--diagnostic-tasks", "-Q", queue, "-c", "2",
			"-b", url, "--result-backend", url, "-l", "error", "--without-mingle"}, io.Discard, io.Discard)
	}()
	defer func() { cancel(); <-done }()
	b.ResetTimer()
	rep, err := loadgen.Run(context.Background(), loadgen.Config{BrokerURL: url, BackendURL: url,
		Queue: queue, Task: task, Kwargs: kwargs, N: b.N, Timeout: 10 * time.Minute})
	b.StopTimer()
	if rep != nil && os.Getenv("OMICS_BENCH_REDIS_URL") == "" {
		defer cleanupLoadgenKeys(b, queue, rep.IDPrefix)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.TasksPerS, "tasks/s")
	// In-process, "loadgen" CPU is the whole process: worker + producer.
	b.ReportMetric(rep.LoadgenCPUusPerTask, "process-cpu-us/task")
}

// TestLoadgenPrefill: --prefill against the real Go worker (the binary, a
// separate process: loadgen stops and continues it). Every task is counted,
// the throughput and Redis counters are measured from the resume, and the worker runs
// on afterwards (a live burst on the same queue completes).
func TestLoadgenPrefill(t *testing.T) {
	requireLoadgenRedis(t)
	queue := fmt.Sprintf("lg_prefill_%d_%d", os.Getpid(), time.Now().UnixNano())
	w := startProc(t, "go worker", interopDir(t), nil, workerBinary(t), "worker", "--diagnostic-tasks", "-Q", queue,
		"-c", "2", "--prefetch-multiplier", "1", "-b", loadgenRedisURL, "--result-backend", loadgenRedisURL,
		"--without-mingle", "--without-heartbeat", "-l", "info")
	w.waitFor(t, "worker ready", 1, 30*time.Second)
	defer cleanupLoadgenKeys(t, queue, "")
	tests := []struct {
		name    string
		task    string
		kwargs  map[string]any
		n       int
		prefill bool
	}{
		{"noop", "diag.noop", nil, 300, true},
		{"progress", "diag.progress", map[string]any{"steps": 5}, 100, true},
		{"live-after", "diag.noop", nil, 50, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := loadgen.Run(context.Background(), loadgen.Config{
				BrokerURL: loadgenRedisURL, BackendURL: loadgenRedisURL, Queue: queue,
				Task: tt.task, Kwargs: tt.kwargs, N: tt.n, Timeout: 2 * time.Minute,
				WatchPID: w.cmd.Process.Pid, Prefill: tt.prefill, RedisStats: true, Label: tt.name,
			})
			if rep != nil {
				defer cleanupLoadgenKeys(t, queue, rep.IDPrefix)
			}
			if err != nil {
				t.Fatalf("loadgen.Run: %v", err)
			}
			if rep.Done != tt.n || rep.Missing != 0 || rep.Failures != 0 || rep.Prefill != tt.prefill {
				t.Fatalf("done %d, missing %d, failures %d, prefill %v; want %d done, prefill %v",
					rep.Done, rep.Missing, rep.Failures, rep.Prefill, tt.n, tt.prefill)
			}
			// (Worker CPU is not checked: clock ticks of 10 ms can round a
			// short run's to 0.)
			if rep.TasksPerS <= 0 || rep.Redis == nil || rep.Redis.CommandsPerTask <= 0 {
				t.Errorf("throughput or Redis counters not measured: %+v", rep)
			}
			if tt.prefill && (rep.ResumeUnixNs < rep.FirstEnqueue || rep.LastResult < rep.ResumeUnixNs) {
				t.Errorf("first enqueue %d, resume %d, last result %d: want them in this order",
					rep.FirstEnqueue, rep.ResumeUnixNs, rep.LastResult)
			}
			if tt.prefill && rep.Redis.PerTask["lpush"] != 0 {
				t.Errorf("LPUSH counted in the prefilled window: %v", rep.Redis.PerTask)
			}
			t.Logf("%s: %.0f tasks/s, worker CPU %.0f us/task, %.2f commands/task, publish %.3fs",
				tt.name, rep.TasksPerS, rep.WorkerCPUusPerTask, rep.Redis.CommandsPerTask, rep.PublishS)
		})
	}
}
