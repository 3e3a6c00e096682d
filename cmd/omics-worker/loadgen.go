// The "loadgen" subcommand: a Celery task producer for benchmarks.
//
// It publishes N protocol-v2 task messages (encoded by protocol.EncodeTask,
// all encoded before the clock starts) with pipelined LPUSH batches, and
// collects every result through ONE pattern subscription on the result
// channels of this run (PSUBSCRIBE celery-task-meta-<run prefix>*). Task ids
// are UUID-shaped with a per-run prefix and a counter in the last group, so a
// received channel name maps to its task without a lookup table.
//
// Why pub/sub rather than polling: every result write of a Celery worker
// (Python or ours) already PUBLISHes on the result key, so listening costs
// Redis only the delivery of messages it publishes anyway, adds no command
// to the server's queue and timestamps each result when it arrives. Polling
// (MGET) would add commands competing with the worker on the single Redis
// thread and quantise latencies to the poll interval. The subscriber sees
// every state (STARTED, PROGRESS...) too; it skips non-final ones with a
// byte scan, no JSON decoding. After the deadline, results that were missed
// on the channel (a pub/sub message lost on reconnect) are picked up with
// MGET and reported as missed_pubsub (they have no latency).
//
// Output: a human summary, then one JSON line (the last line of stdout).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

func init() {
	register("loadgen", "publish N tasks and measure tasks/s and latency (benchmarks)", runLoadgen)
}

// loadgenConfig describes one load run. The zero value of every optional
// field means its default.
type loadgenConfig struct {
	// BrokerURL and BackendURL are Redis URLs (default redis://localhost:6379/0).
	BrokerURL, BackendURL string
	// Queue receives the messages (default "celery").
	Queue string
	// Task is the task name (default diag.noop).
	Task string
	// Args and Kwargs are the task arguments.
	Args   []any
	Kwargs map[string]any
	// N is the number of tasks (default 1).
	N int
	// Rate limits publishing to this many tasks per second (0 = as fast as
	// possible).
	Rate float64
	// Batch is the number of LPUSH commands per pipelined round trip
	// (default 500; with Rate, batches are cut to about 10 ms of tasks).
	Batch int
	// Priority is the message priority 0..9.
	Priority int
	// Timeout bounds the wait for results after the last publish (default 5 min).
	Timeout time.Duration
	// WatchPID, if not 0, is a process whose tree's RSS (sum over the
	// process and its descendants) is sampled every SampleEvery (default
	// 100 ms) while the run lasts.
	WatchPID    int
	SampleEvery time.Duration
	// RedisStats takes INFO stats/commandstats of the broker server before
	// and after the run and reports the deltas per task.
	RedisStats bool
	// ReadyFile, if set, is created once every task has been published.
	ReadyFile string
	// Label is copied into the report.
	Label string
}

// latencyStats are enqueue→final-state latencies in milliseconds.
type latencyStats struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// redisStats are server counter deltas over the run (whole server: use a
// private Redis for meaningful numbers).
type redisStats struct {
	// Reads is the delta of total_reads_processed: read events on client
	// sockets, i.e. request round trips (a pipeline or a MULTI block sent at
	// once is one read).
	Reads int64 `json:"reads"`
	// ReadsPerTask excludes loadgen's own reads (publish batches, INFO).
	ReadsPerTask float64 `json:"round_trips_per_task"`
	// Commands is the delta of total_commands_processed (commands run
	// inside Lua scripts included).
	Commands        int64   `json:"commands"`
	CommandsPerTask float64 `json:"commands_per_task"`
	// PerTask is calls per task by command (loadgen's LPUSH/INFO removed).
	PerTask map[string]float64 `json:"calls_per_task"`
	// CPUusPerTask is the Redis server's CPU time (user+sys) per task.
	CPUusPerTask float64 `json:"cpu_us_per_task"`
}

// loadgenReport is the JSON line.
type loadgenReport struct {
	Label        string        `json:"label,omitempty"`
	IDPrefix     string        `json:"id_prefix"`
	Task         string        `json:"task"`
	Queue        string        `json:"queue"`
	N            int           `json:"n"`
	Done         int           `json:"done"`
	Failures     int           `json:"failures"`
	Missing      int           `json:"missing"`
	MissedPubsub int           `json:"missed_pubsub"`
	PublishS     float64       `json:"publish_s"`
	ElapsedS     float64       `json:"elapsed_s"`
	TasksPerS    float64       `json:"tasks_per_s"`
	Latency      *latencyStats `json:"latency,omitempty"`
	FirstEnqueue int64         `json:"first_enqueue_unix_ns"`
	LastResult   int64         `json:"last_result_unix_ns"`
	// WorkerCPUusPerTask is the CPU time (user+sys, reaped children
	// included) of the --pid tree per task, at clock-tick resolution.
	WorkerCPUusPerTask float64 `json:"worker_cpu_us_per_task,omitempty"`
	// LoadgenCPUusPerTask is this process's CPU time per task (publishing
	// and listening).
	LoadgenCPUusPerTask float64     `json:"loadgen_cpu_us_per_task"`
	RSSStartKiB         int64       `json:"rss_start_kib,omitempty"`
	RSSPeakKiB          int64       `json:"rss_peak_kib,omitempty"`
	Redis               *redisStats `json:"redis,omitempty"`
}

func runLoadgen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("omics-worker loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgenConfig
	var argsJSON, kwargsJSON string
	fs.StringVar(&cfg.BrokerURL, "broker", "", "broker URL (env CELERY_BROKER_URL, default "+defaultRedisURL+")")
	fs.StringVar(&cfg.BrokerURL, "b", "", "short for --broker")
	fs.StringVar(&cfg.BackendURL, "backend", "", "result backend URL (env CELERY_RESULT_BACKEND, default "+defaultRedisURL+")")
	fs.StringVar(&cfg.Queue, "Q", "celery", "queue to publish to")
	fs.StringVar(&cfg.Task, "task", "diag.noop", "task name")
	fs.StringVar(&argsJSON, "args", "[]", "positional arguments as a JSON array")
	fs.StringVar(&kwargsJSON, "kwargs", "{}", "keyword arguments as a JSON object")
	fs.IntVar(&cfg.N, "n", 1000, "number of tasks")
	fs.Float64Var(&cfg.Rate, "rate", 0, "publish at most this many tasks/s (0 = as fast as possible)")
	fs.IntVar(&cfg.Batch, "batch", 500, "LPUSH commands per pipelined round trip")
	fs.IntVar(&cfg.Priority, "priority", 0, "message priority 0..9")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "wait at most this long for results after publishing")
	fs.IntVar(&cfg.WatchPID, "pid", 0, "sample the RSS of this process tree during the run")
	fs.DurationVar(&cfg.SampleEvery, "sample-every", 100*time.Millisecond, "RSS sampling interval")
	fs.BoolVar(&cfg.RedisStats, "redis-stats", false, "report INFO stats/commandstats deltas per task (use a private Redis)")
	fs.StringVar(&cfg.ReadyFile, "ready-file", "", "create this file when every task is published")
	fs.StringVar(&cfg.Label, "label", "", "label copied into the JSON report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "omics-worker loadgen: unexpected arguments %q\n", fs.Args())
		return 2
	}
	// json.Number keeps 5 an integer (a float64 would be sent as 5.0).
	if err := unmarshalNumbers(argsJSON, &cfg.Args); err != nil {
		fmt.Fprintf(stderr, "omics-worker loadgen: --args: %v\n", err)
		return 2
	}
	if err := unmarshalNumbers(kwargsJSON, &cfg.Kwargs); err != nil {
		fmt.Fprintf(stderr, "omics-worker loadgen: --kwargs: %v\n", err)
		return 2
	}
	if cfg.BrokerURL == "" {
		cfg.BrokerURL = cmpOr(os.Getenv("CELERY_BROKER_URL"), defaultRedisURL)
	}
	if cfg.BackendURL == "" {
		cfg.BackendURL = cmpOr(os.Getenv("CELERY_RESULT_BACKEND"), defaultRedisURL)
	}
	rep, err := runLoad(ctx, cfg)
	if rep != nil {
		printLoadReport(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker loadgen: %v\n", err)
		return 1
	}
	if rep.Missing > 0 || rep.Failures > 0 {
		return 1
	}
	return 0
}

func unmarshalNumbers(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}

func printLoadReport(w io.Writer, r *loadgenReport) {
	fmt.Fprintf(w, "%s: %d tasks, %d done, %d failed, %d missing (%d seen only by MGET)\n",
		r.Task, r.N, r.Done, r.Failures, r.Missing, r.MissedPubsub)
	fmt.Fprintf(w, "published in %.3f s; first enqueue -> last result %.3f s: %.0f tasks/s\n",
		r.PublishS, r.ElapsedS, r.TasksPerS)
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "enqueue -> final state: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms\n",
			l.P50, l.P90, l.P99, l.Max, l.Mean)
	}
	if r.WorkerCPUusPerTask > 0 {
		fmt.Fprintf(w, "CPU per task: worker tree %.0f us, loadgen %.0f us\n", r.WorkerCPUusPerTask, r.LoadgenCPUusPerTask)
	}
	if r.RSSPeakKiB > 0 {
		fmt.Fprintf(w, "RSS of pid tree: %.1f MiB at start, %.1f MiB peak\n",
			float64(r.RSSStartKiB)/1024, float64(r.RSSPeakKiB)/1024)
	}
	if s := r.Redis; s != nil {
		fmt.Fprintf(w, "redis: %.2f round trips/task (total_reads_processed), %.2f commands/task, %.0f us CPU/task\n",
			s.ReadsPerTask, s.CommandsPerTask, s.CPUusPerTask)
		names := make([]string, 0, len(s.PerTask))
		for k := range s.PerTask {
			names = append(names, k)
		}
		sort.Strings(names)
		var b strings.Builder
		for _, k := range names {
			fmt.Fprintf(&b, " %s=%.2f", k, s.PerTask[k])
		}
		fmt.Fprintf(w, "redis calls/task:%s\n", b.String())
	}
	j, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", j)
}

// dialRedis connects to a Redis URL in the forms protocol/transport/redistransport accepts
// (TLS client certificates and CA files are not supported here).
func dialRedis(ctx context.Context, url string) (redigo.Conn, redistransport.Endpoint, error) {
	ep, err := redistransport.ParseURL(url)
	if err != nil {
		return nil, ep, err
	}
	if ep.TLSCAFile != "" || ep.TLSCertFile != "" || ep.TLSKeyFile != "" {
		return nil, ep, errors.New("loadgen: ssl_ca_certs/ssl_certfile/ssl_keyfile are not supported")
	}
	opts := []redigo.DialOption{
		redigo.DialDatabase(ep.DB),
		redigo.DialConnectTimeout(5 * time.Second),
		redigo.DialUseTLS(ep.TLS),
		redigo.DialTLSSkipVerify(ep.TLSSkipVerify),
	}
	if ep.Password != "" {
		opts = append(opts, redigo.DialPassword(ep.Password), redigo.DialUsername(ep.Username))
	}
	c, err := redigo.DialContext(ctx, ep.Network, ep.Address, opts...)
	if err != nil {
		return nil, ep, fmt.Errorf("connect to %s: %w", ep, err)
	}
	return c, ep, nil
}

// runPrefix returns the first three groups of a UUID4-shaped id plus the
// fourth; the counter fills the fifth group (12 hex digits).
func runPrefix() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-4" + h[12:15] + "-a" + h[15:18] + "-"
}

func taskID(prefix string, i int) string { return fmt.Sprintf("%s%012x", prefix, i) }

// finalState scans a result meta for its "status" and reports whether it
// is a ready state and whether it is a failure. No JSON decoding: the
// subscriber must stay cheap.
func finalState(meta []byte) (final, failed bool) {
	i := bytes.Index(meta, []byte(`"status"`))
	if i < 0 {
		return false, false
	}
	rest := bytes.TrimLeft(meta[i+len(`"status"`):], " \t\r\n:")
	if len(rest) == 0 || rest[0] != '"' {
		return false, false
	}
	rest = rest[1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return false, false
	}
	switch string(rest[:end]) {
	case "SUCCESS":
		return true, false
	case "FAILURE", "REVOKED", "REJECTED", "IGNORED":
		return true, true
	}
	return false, false
}

// collector receives result messages.
type collector struct {
	recv     []time.Duration // arrival, since t0; 0 = not yet
	failed   []bool
	t0       time.Time
	mu       sync.Mutex
	done     int
	failures int
	allDone  chan struct{}
}

func (c *collector) run(psc redigo.PubSubConn, keyPrefixLen int) error {
	for {
		switch m := psc.Receive().(type) {
		case redigo.Message:
			final, failed := finalState(m.Data)
			if !final {
				continue
			}
			now := time.Since(c.t0)
			idx, err := strconv.ParseUint(m.Channel[keyPrefixLen:], 16, 63)
			if err != nil || int(idx) >= len(c.recv) {
				continue
			}
			c.mu.Lock()
			if c.recv[idx] == 0 {
				c.recv[idx] = max(now, 1)
				c.failed[idx] = failed
				c.done++
				if failed {
					c.failures++
				}
				if c.done == len(c.recv) {
					close(c.allDone)
				}
			}
			c.mu.Unlock()
		case error:
			return m
		}
	}
}

// runLoad publishes cfg.N tasks and waits for their results.
func runLoad(ctx context.Context, cfg loadgenConfig) (*loadgenReport, error) {
	if cfg.N <= 0 {
		cfg.N = 1
	}
	if cfg.Queue == "" {
		cfg.Queue = "celery"
	}
	if cfg.Task == "" {
		cfg.Task = "diag.noop"
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 100 * time.Millisecond
	}
	if cfg.Priority < 0 || cfg.Priority > 9 {
		return nil, fmt.Errorf("priority %d: want 0..9", cfg.Priority)
	}
	batch := cfg.Batch
	if cfg.Rate > 0 {
		batch = max(1, min(batch, int(cfg.Rate/100)))
	}

	pub, bep, err := dialRedis(ctx, cfg.BrokerURL)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	defer pub.Close()
	sub, rep, err := dialRedis(ctx, cfg.BackendURL)
	if err != nil {
		return nil, fmt.Errorf("result backend: %w", err)
	}
	defer sub.Close()
	bnames := protocol.DefaultNames(bep.DB)
	rnames := protocol.DefaultNames(rep.DB)
	queueKey := bnames.QueueKey(cfg.Queue, cfg.Priority)

	// Encode everything before the clock starts.
	prefix := runPrefix()
	msgs := make([][]byte, cfg.N)
	for i := range msgs {
		m := protocol.NewTaskMessage(cfg.Task, cfg.Args, cfg.Kwargs)
		m.ID = taskID(prefix, i)
		m.RootID = m.ID
		env, err := protocol.EncodeTask(m, protocol.PublishOptions{Queue: cfg.Queue, Priority: cfg.Priority, Origin: "loadgen"})
		if err != nil {
			return nil, fmt.Errorf("encode task: %w", err)
		}
		msgs[i] = env
	}

	keyPrefix := rnames.ResultKey(prefix)
	psc := redigo.PubSubConn{Conn: sub}
	if err := psc.PSubscribe(keyPrefix + "*"); err != nil {
		return nil, fmt.Errorf("psubscribe: %w", err)
	}
	if _, ok := psc.Receive().(redigo.Subscription); !ok {
		return nil, errors.New("psubscribe: no confirmation")
	}

	var before map[string]int64
	if cfg.RedisStats {
		if before, err = redisCounters(pub); err != nil {
			return nil, err
		}
	}

	col := &collector{
		recv:    make([]time.Duration, cfg.N),
		failed:  make([]bool, cfg.N),
		allDone: make(chan struct{}),
	}
	enq := make([]time.Duration, cfg.N)

	// RSS sampler.
	var rssStart, rssPeak, cpuStart int64
	if cfg.WatchPID > 0 {
		cpuStart = treeCPUus(cfg.WatchPID)
	}
	ownStart := selfCPUus()
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	if cfg.WatchPID > 0 {
		rssStart = treeRSSKiB(cfg.WatchPID)
		rssPeak = rssStart
		go func() {
			defer close(samplerDone)
			t := time.NewTicker(cfg.SampleEvery)
			defer t.Stop()
			for {
				select {
				case <-stopSampler:
					return
				case <-t.C:
					rssPeak = max(rssPeak, treeRSSKiB(cfg.WatchPID))
				}
			}
		}()
	} else {
		close(samplerDone)
	}

	t0 := time.Now()
	col.t0 = t0
	subErr := make(chan error, 1)
	go func() { subErr <- col.run(psc, len(keyPrefix)) }()

	// Publish.
	batches := 0
	var pubErr error
	for start := 0; start < cfg.N && pubErr == nil; start += batch {
		end := min(start+batch, cfg.N)
		if cfg.Rate > 0 {
			due := time.Duration(float64(start) / cfg.Rate * float64(time.Second))
			if d := due - time.Since(t0); d > 0 {
				time.Sleep(d)
			}
		}
		now := time.Since(t0)
		for i := start; i < end; i++ {
			enq[i] = now
			if err := pub.Send("LPUSH", queueKey, msgs[i]); err != nil {
				pubErr = err
			}
		}
		if err := pub.Flush(); err != nil {
			pubErr = err
		}
		for i := start; i < end && pubErr == nil; i++ {
			if _, err := pub.Receive(); err != nil {
				pubErr = err
			}
		}
		batches++
		if ctx.Err() != nil {
			pubErr = ctx.Err()
		}
	}
	publishDur := time.Since(t0)
	if pubErr != nil {
		_ = sub.Close()
		return nil, fmt.Errorf("publish: %w", pubErr)
	}
	if cfg.ReadyFile != "" {
		if err := os.WriteFile(cfg.ReadyFile, []byte("published\n"), 0o644); err != nil {
			return nil, err
		}
	}

	// Wait.
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	var waitErr error
	select {
	case <-col.allDone:
	case <-timer.C:
	case <-ctx.Done():
		waitErr = ctx.Err()
	case err := <-subErr:
		waitErr = fmt.Errorf("subscription: %w", err)
	}
	close(stopSampler)
	<-samplerDone
	var workerCPU int64
	if cfg.WatchPID > 0 {
		workerCPU = treeCPUus(cfg.WatchPID) - cpuStart
	}
	ownCPU := selfCPUus() - ownStart

	col.mu.Lock()
	recv := append([]time.Duration(nil), col.recv...)
	failed := append([]bool(nil), col.failed...)
	col.mu.Unlock()

	r := &loadgenReport{Label: cfg.Label, IDPrefix: prefix, Task: cfg.Task, Queue: cfg.Queue, N: cfg.N,
		PublishS: publishDur.Seconds(), RSSStartKiB: rssStart, RSSPeakKiB: rssPeak}

	if cfg.RedisStats {
		after, err := redisCounters(pub)
		if err != nil {
			return nil, err
		}
		r.Redis = statsDelta(before, after, cfg.N, batches)
	}

	// Results missed on the channel: look them up.
	var missing []int
	for i, d := range recv {
		if d == 0 {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 && ctx.Err() == nil {
		rc, _, err := dialRedis(ctx, cfg.BackendURL)
		if err == nil {
			for s := 0; s < len(missing); s += 1000 {
				part := missing[s:min(s+1000, len(missing))]
				keys := make([]any, len(part))
				for k, i := range part {
					keys[k] = rnames.ResultKey(taskID(prefix, i))
				}
				vals, err := redigo.ByteSlices(rc.Do("MGET", keys...))
				if err != nil {
					break
				}
				for _, v := range vals {
					if final, f := finalState(v); final {
						r.MissedPubsub++
						r.Done++
						if f {
							r.Failures++
						}
					}
				}
			}
			rc.Close()
		}
	}

	var lat []float64
	var last time.Duration
	for i, d := range recv {
		if d == 0 {
			continue
		}
		r.Done++
		if failed[i] {
			r.Failures++
		}
		last = max(last, d)
		lat = append(lat, float64(d-enq[i])/float64(time.Millisecond))
	}
	r.Missing = cfg.N - r.Done
	r.LoadgenCPUusPerTask = float64(ownCPU) / float64(cfg.N)
	if workerCPU > 0 {
		r.WorkerCPUusPerTask = float64(workerCPU) / float64(cfg.N)
	}
	r.FirstEnqueue = t0.UnixNano()
	if last > 0 {
		r.LastResult = t0.Add(last).UnixNano()
		r.ElapsedS = last.Seconds()
		r.TasksPerS = float64(len(lat)) / last.Seconds()
	}
	r.Latency = latencies(lat)
	if waitErr == nil && r.Missing > 0 {
		waitErr = fmt.Errorf("%d of %d results missing after %v", r.Missing, cfg.N, cfg.Timeout)
	}
	return r, waitErr
}

func latencies(ms []float64) *latencyStats {
	if len(ms) == 0 {
		return nil
	}
	sort.Float64s(ms)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ms)))) - 1
		return ms[max(0, min(i, len(ms)-1))]
	}
	sum := 0.0
	for _, v := range ms {
		sum += v
	}
	return &latencyStats{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
}

// redisCounters reads total_reads_processed, total_commands_processed and
// every cmdstat_<name> calls counter ("cmd:<name>").
func redisCounters(c redigo.Conn) (map[string]int64, error) {
	out := map[string]int64{}
	for _, section := range []string{"stats", "commandstats", "cpu"} {
		s, err := redigo.String(c.Do("INFO", section))
		if err != nil {
			return nil, fmt.Errorf("INFO %s: %w", section, err)
		}
		sc := bufio.NewScanner(strings.NewReader(s))
		for sc.Scan() {
			k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
			if !ok {
				continue
			}
			switch {
			case k == "total_reads_processed" || k == "total_commands_processed":
				n, _ := strconv.ParseInt(v, 10, 64)
				out[k] = n
			case k == "used_cpu_sys" || k == "used_cpu_user":
				f, _ := strconv.ParseFloat(v, 64)
				out[k] = int64(f * 1e6)
			case strings.HasPrefix(k, "cmdstat_"):
				calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
				n, _ := strconv.ParseInt(calls, 10, 64)
				out["cmd:"+strings.TrimPrefix(k, "cmdstat_")] = n
			}
		}
	}
	return out, nil
}

func statsDelta(before, after map[string]int64, n, batches int) *redisStats {
	s := &redisStats{PerTask: map[string]float64{}}
	s.Reads = after["total_reads_processed"] - before["total_reads_processed"]
	s.Commands = after["total_commands_processed"] - before["total_commands_processed"]
	// Ours: one read per publish batch plus the second INFO pair (each INFO
	// is one read; the first pair counted itself only partly, ignore it).
	own := int64(batches + 2)
	s.ReadsPerTask = float64(s.Reads-own) / float64(n)
	cpu := after["used_cpu_sys"] + after["used_cpu_user"] - before["used_cpu_sys"] - before["used_cpu_user"]
	s.CPUusPerTask = float64(cpu) / float64(n)
	s.CommandsPerTask = float64(s.Commands-int64(n)-2) / float64(n)
	for k, v := range after {
		name, ok := strings.CutPrefix(k, "cmd:")
		if !ok {
			continue
		}
		d := v - before[k]
		switch name {
		case "lpush":
			d -= int64(n)
		case "info":
			d -= 3
		}
		if d > 0 {
			s.PerTask[name] = float64(d) / float64(n)
		}
	}
	return s
}

// clockTick is USER_HZ, 100 on every Linux platform Go supports.
const clockTick = 100

// treeCPUus sums utime+stime+cutime+cstime over pid and its descendants
// (cutime/cstime hold the children already reaped, e.g. recycled prefork
// children), in microseconds.
func treeCPUus(pid int) int64 {
	var ticks int64
	for _, p := range treePIDs(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// after ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
		if len(f) < 15 {
			continue
		}
		for _, k := range f[11:15] {
			n, _ := strconv.ParseInt(k, 10, 64)
			ticks += n
		}
	}
	return ticks * (1_000_000 / clockTick)
}

// selfCPUus is this process's CPU time (user+sys) in microseconds.
func selfCPUus() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}

// treeRSSKiB sums the resident set size of pid and all its descendants
// (prefork pools are a process tree). 0 if pid is gone.
func treeRSSKiB(pid int) int64 {
	var total int64
	page := int64(os.Getpagesize())
	for _, p := range treePIDs(pid) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/statm")
		if err == nil {
			f := strings.Fields(string(b))
			if len(f) > 1 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				total += n * page / 1024
			}
		}
	}
	return total
}

// treePIDs returns pid and its descendants (pid even if it is gone).
func treePIDs(pid int) []int {
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		children[pp] = append(children[pp], p)
	}
	var out []int
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p)
		stack = append(stack, children[p]...)
	}
	return out
}
