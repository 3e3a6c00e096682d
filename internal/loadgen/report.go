package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	redigo "github.com/gomodule/redigo/redis"
)

// LatencyStats are enqueue→final-state latencies in milliseconds.
type LatencyStats struct {
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

// RedisStats are server counter deltas over the run (whole server: use a
// private Redis for meaningful numbers).
type RedisStats struct {
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

// Report is the result of a run; its JSON form is the last line loadgen
// prints.
type Report struct {
	Label        string  `json:"label,omitempty"`
	IDPrefix     string  `json:"id_prefix"`
	Task         string  `json:"task"`
	Queue        string  `json:"queue"`
	N            int     `json:"n"`
	Done         int     `json:"done"`
	Failures     int     `json:"failures"`
	Missing      int     `json:"missing"`
	MissedPubsub int     `json:"missed_pubsub"`
	PublishS     float64 `json:"publish_s"`
	// Prefill: the worker was stopped while publishing (Config.Prefill);
	// ElapsedS, TasksPerS, the latencies, CPU and Redis counters then
	// start at ResumeUnixNs, when it was continued.
	Prefill      bool          `json:"prefill,omitempty"`
	ResumeUnixNs int64         `json:"resume_unix_ns,omitempty"`
	ElapsedS     float64       `json:"elapsed_s"`
	TasksPerS    float64       `json:"tasks_per_s"`
	Latency      *LatencyStats `json:"latency,omitempty"`
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
	Redis               *RedisStats `json:"redis,omitempty"`
}

// newReport starts the report of a run from what publish and the meters
// measured.
func newReport(cfg Config, prefix string, p published, u usage) *Report {
	r := &Report{Label: cfg.Label, IDPrefix: prefix, Task: cfg.Task, Queue: cfg.Queue, N: cfg.N,
		PublishS: p.duration.Seconds(), RSSStartKiB: u.rssStart, RSSPeakKiB: u.rssPeak, Prefill: cfg.Prefill}
	if !p.start.IsZero() {
		r.FirstEnqueue = p.start.UnixNano()
	}
	if cfg.Prefill {
		r.ResumeUnixNs = p.resumed.UnixNano()
	}
	r.LoadgenCPUusPerTask = float64(u.ownCPUus) / float64(cfg.N)
	if u.workerCPUus > 0 {
		r.WorkerCPUusPerTask = float64(u.workerCPUus) / float64(cfg.N)
	}
	return r
}

// addResults counts the results received on the channel and computes
// latencies and throughput; recv and enq are durations since t0 (the
// first enqueue, or the resume with Config.Prefill).
func (r *Report) addResults(recv []time.Duration, failed []bool, enq []time.Duration, t0 time.Time) {
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
	r.Missing = r.N - r.Done
	if r.FirstEnqueue == 0 {
		r.FirstEnqueue = t0.UnixNano()
	}
	if last > 0 {
		r.LastResult = t0.Add(last).UnixNano()
		r.ElapsedS = last.Seconds()
		r.TasksPerS = float64(len(lat)) / last.Seconds()
	}
	r.Latency = latencies(lat)
}

func latencies(ms []float64) *LatencyStats {
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
	return &LatencyStats{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
}

// Print writes the human summary, then the report as one JSON line.
func Print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%s: %d tasks, %d done, %d failed, %d missing (%d seen only by MGET)\n",
		r.Task, r.N, r.Done, r.Failures, r.Missing, r.MissedPubsub)
	if r.Prefill {
		fmt.Fprintf(w, "published in %.3f s with the worker stopped; resume -> last result %.3f s: %.0f tasks/s\n",
			r.PublishS, r.ElapsedS, r.TasksPerS)
	} else {
		fmt.Fprintf(w, "published in %.3f s; first enqueue -> last result %.3f s: %.0f tasks/s\n",
			r.PublishS, r.ElapsedS, r.TasksPerS)
	}
	if l := r.Latency; l != nil {
		from := "enqueue"
		if r.Prefill {
			from = "resume"
		}
		fmt.Fprintf(w, "%s -> final state: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms, mean %.2f ms\n",
			from, l.P50, l.P90, l.P99, l.Max, l.Mean)
	}
	if r.WorkerCPUusPerTask > 0 {
		fmt.Fprintf(w, "CPU per task: worker tree %.0f us, loadgen %.0f us\n", r.WorkerCPUusPerTask, r.LoadgenCPUusPerTask)
	}
	if r.RSSPeakKiB > 0 {
		fmt.Fprintf(w, "RSS of pid tree: %.1f MiB at start, %.1f MiB peak\n",
			float64(r.RSSStartKiB)/1024, float64(r.RSSPeakKiB)/1024)
	}
	if s := r.Redis; s != nil {
		printRedisStats(w, s)
	}
	j, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", j)
}

func printRedisStats(w io.Writer, s *RedisStats) {
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
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
				addCounter(out, k, v)
			}
		}
	}
	return out, nil
}

// addCounter records one INFO line if it is a counter redisCounters keeps.
func addCounter(out map[string]int64, k, v string) {
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

// statsDelta computes the per-task Redis figures of a run; ownReads and
// lpushes are loadgen's own read events and LPUSHes between the snapshots
// (published.ownReads, published.lpushes), taken out.
func statsDelta(before, after map[string]int64, n int, ownReads, lpushes int64) *RedisStats {
	s := &RedisStats{PerTask: map[string]float64{}}
	s.Reads = after["total_reads_processed"] - before["total_reads_processed"]
	s.Commands = after["total_commands_processed"] - before["total_commands_processed"]
	s.ReadsPerTask = float64(s.Reads-ownReads) / float64(n)
	cpu := after["used_cpu_sys"] + after["used_cpu_user"] - before["used_cpu_sys"] - before["used_cpu_user"]
	s.CPUusPerTask = float64(cpu) / float64(n)
	s.CommandsPerTask = float64(s.Commands-lpushes-2) / float64(n)
	for k, v := range after {
		name, ok := strings.CutPrefix(k, "cmd:")
		if !ok {
			continue
		}
		d := v - before[k]
		switch name {
		case "lpush":
			d -= lpushes
		case "info":
			d -= 3
		}
		if d > 0 {
			s.PerTask[name] = float64(d) / float64(n)
		}
	}
	return s
}
