// Package loadgen is a Celery task producer for benchmarks: it publishes
// N protocol-v2 task messages to a Redis broker and measures tasks/s,
// enqueue→result latency, CPU, RSS and Redis round trips per task (the
// `omics-worker loadgen` subcommand).
//
// Every message is encoded (protocol.EncodeTask) before the clock starts
// and published with pipelined LPUSH batches; every result is collected
// through ONE pattern subscription on the result channels of this run
// (PSUBSCRIBE celery-task-meta-<run prefix>*). Task ids are UUID-shaped
// with a per-run prefix and a counter in the last group, so a received
// channel name maps to its task without a lookup table.
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
// The run is four steps: encode, publish, collect (wait, then sweep),
// report. With Config.Prefill the watched worker is stopped (SIGSTOP)
// during the publish step and continued before the collect step, so the
// measured window holds only the worker draining a full queue (prefill.go).
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

// Config describes one load run. The zero value of every optional field
// means its default.
type Config struct {
	// BrokerURL is a Redis or an AMQP URL (amqp.go); BackendURL is a
	// Redis URL.
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
	// Prefill holds the WatchPID process tree stopped (SIGSTOP) while
	// every task is published, then continues it (SIGCONT): the worker
	// drains a full queue with no producer competing for the cores.
	// Throughput, latencies, CPU, RSS and Redis counters are then measured
	// from the resume (prefill.go). Needs WatchPID; excludes Rate.
	Prefill bool
	// ReadyFile, if set, is created once every task has been published.
	ReadyFile string
	// Label is copied into the report.
	Label string
}

// ParseArgs decodes --args (a JSON array) and --kwargs (a JSON object);
// json.Number keeps 5 an integer (a float64 would be sent as 5.0).
func ParseArgs(argsJSON, kwargsJSON string) ([]any, map[string]any, error) {
	var args []any
	var kwargs map[string]any
	if err := decodeNumbers(argsJSON, &args); err != nil {
		return nil, nil, fmt.Errorf("--args: %w", err)
	}
	if err := decodeNumbers(kwargsJSON, &kwargs); err != nil {
		return nil, nil, fmt.Errorf("--kwargs: %w", err)
	}
	return args, kwargs, nil
}

func decodeNumbers(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}

// withDefaults fills the defaults and checks the priority.
func (cfg Config) withDefaults() (Config, error) {
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
	if cfg.Rate > 0 {
		cfg.Batch = max(1, min(cfg.Batch, int(cfg.Rate/100)))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 100 * time.Millisecond
	}
	if cfg.Priority < 0 || cfg.Priority > 9 {
		return cfg, fmt.Errorf("priority %d: want 0..9", cfg.Priority)
	}
	if cfg.Prefill && cfg.WatchPID <= 0 {
		return cfg, errors.New("prefill needs the worker's pid (--pid)")
	}
	if cfg.Prefill && cfg.Rate > 0 {
		return cfg, errors.New("prefill publishes everything before the worker runs: --rate does not apply")
	}
	return cfg, nil
}

// dial connects to a Redis URL through the transport's Dial; no read
// deadline, since the subscription waits as long as the run lasts.
func dial(ctx context.Context, url string) (redigo.Conn, protocol.Names, error) {
	ep, err := redistransport.ParseURL(url)
	if err != nil {
		return nil, protocol.Names{}, err
	}
	c, err := redistransport.Dial(ctx, ep, redistransport.Config{ReadTimeout: -1})
	if err != nil {
		return nil, protocol.Names{}, err
	}
	return c, protocol.DefaultNames(ep.DB), nil
}

// Run publishes cfg.N tasks and waits for their results. The report is
// returned even with an error when the run got as far as waiting.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	push, pub, closeBroker, err := openBroker(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	defer closeBroker()
	sub, rnames, err := dial(ctx, cfg.BackendURL)
	if err != nil {
		return nil, fmt.Errorf("result backend: %w", err)
	}
	defer sub.Close()

	prefix := runPrefix()
	msgs, err := encode(cfg, prefix)
	if err != nil {
		return nil, err
	}
	col, err := subscribe(sub, rnames.ResultKey(prefix), cfg.N)
	if err != nil {
		return nil, err
	}
	var (
		p    published
		tree *stoppedTree
	)
	if cfg.Prefill {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		tree, err = stopTree(cfg.WatchPID, func(s os.Signal) {
			cancel(fmt.Errorf("%v while the worker was stopped", s))
		})
		if err != nil {
			return nil, fmt.Errorf("prefill: %w", err)
		}
		defer tree.resume()
		if p, err = publish(ctx, push, msgs, cfg, time.Now()); err != nil {
			if cause := context.Cause(ctx); cause != nil {
				err = cause
			}
			return nil, fmt.Errorf("publish: %w", err)
		}
		p.enq = make([]time.Duration, cfg.N) // queued since the resume
		if err := writeReady(cfg.ReadyFile); err != nil {
			return nil, err
		}
	}
	var before map[string]int64
	if cfg.RedisStats {
		if before, err = redisCounters(pub); err != nil {
			return nil, err
		}
	}
	m := startMeters(cfg.WatchPID, cfg.SampleEvery)
	col.start()
	if cfg.Prefill {
		p.resumed = col.t0
		tree.resume()
	} else {
		if p, err = publish(ctx, push, msgs, cfg, col.t0); err != nil {
			_ = sub.Close()
			return nil, fmt.Errorf("publish: %w", err)
		}
		if err := writeReady(cfg.ReadyFile); err != nil {
			return nil, err
		}
	}
	waitErr := col.wait(ctx, cfg.Timeout)
	usage := m.stop()
	recv, failed := col.snapshot()

	r := newReport(cfg, prefix, p, usage)
	if cfg.RedisStats {
		after, err := redisCounters(pub)
		if err != nil {
			return nil, err
		}
		r.Redis = statsDelta(before, after, cfg.N, p.ownReads(cfg), p.lpushes(cfg))
	}
	if ctx.Err() == nil {
		sweepMissed(ctx, cfg.BackendURL, rnames, prefix, recv, r)
	}
	r.addResults(recv, failed, p.enq, col.t0)
	if waitErr == nil && r.Missing > 0 {
		waitErr = fmt.Errorf("%d of %d results missing after %v", r.Missing, cfg.N, cfg.Timeout)
	}
	return r, waitErr
}

func writeReady(path string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte("published\n"), 0o644)
}

// encode builds every task message before the clock starts.
func encode(cfg Config, prefix string) ([][]byte, error) {
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
	return msgs, nil
}

// published is what publish measured.
type published struct {
	enq      []time.Duration // enqueue time of each task, since t0
	batches  int
	duration time.Duration
	start    time.Time // first enqueue
	resumed  time.Time // prefill: when the worker was continued
}

// ownReads is the number of Redis read events loadgen itself causes
// between the two counter snapshots: its publish batches (none in the
// prefill window) plus the second INFO triple's (each INFO is one read;
// the first triple counted itself only partly, ignore it).
func (p published) ownReads(cfg Config) int64 {
	if cfg.Prefill {
		return 2
	}
	return int64(p.batches + 2)
}

// lpushes is the number of loadgen's LPUSHes between the snapshots.
func (p published) lpushes(cfg Config) int64 {
	if cfg.Prefill {
		return 0
	}
	return int64(cfg.N)
}

// pushFunc sends one batch of messages to the broker, setting enq[i] to
// now for each.
type pushFunc func(msgs [][]byte, enq []time.Duration, now time.Duration) error

// openBroker connects to the broker: a Redis URL publishes with pipelined
// LPUSHes on pub (also used for --redis-stats); an AMQP URL publishes
// through amqptransport (amqp.go) and pub is nil.
func openBroker(ctx context.Context, cfg Config) (push pushFunc, pub redigo.Conn, closeFn func(), err error) {
	if isAMQP(cfg.BrokerURL) {
		if cfg.RedisStats {
			return nil, nil, nil, fmt.Errorf("--redis-stats needs a Redis broker, not %s", cfg.BrokerURL)
		}
		return openAMQP(ctx, cfg)
	}
	c, bnames, err := dial(ctx, cfg.BrokerURL)
	if err != nil {
		return nil, nil, nil, err
	}
	key := bnames.QueueKey(cfg.Queue, cfg.Priority)
	push = func(msgs [][]byte, enq []time.Duration, now time.Duration) error {
		return pushBatch(c, key, msgs, enq, now)
	}
	return push, c, func() { _ = c.Close() }, nil
}

// publish sends msgs in batches of cfg.Batch (pipelined LPUSHes on Redis,
// parallel confirmed publishes on AMQP), paced to cfg.Rate when set.
func publish(ctx context.Context, push pushFunc, msgs [][]byte, cfg Config, t0 time.Time) (published, error) {
	p := published{enq: make([]time.Duration, len(msgs)), start: t0}
	for start := 0; start < len(msgs); start += cfg.Batch {
		end := min(start+cfg.Batch, len(msgs))
		if cfg.Rate > 0 {
			due := time.Duration(float64(start) / cfg.Rate * float64(time.Second))
			if d := due - time.Since(t0); d > 0 {
				time.Sleep(d)
			}
		}
		if err := push(msgs[start:end], p.enq[start:end], time.Since(t0)); err != nil {
			return p, err
		}
		p.batches++
		if err := ctx.Err(); err != nil {
			return p, err
		}
	}
	p.duration = time.Since(t0)
	return p, nil
}

// pushBatch sends one pipelined round trip of LPUSHes.
func pushBatch(c redigo.Conn, queueKey string, msgs [][]byte, enq []time.Duration, now time.Duration) error {
	var err error
	for i, m := range msgs {
		enq[i] = now
		if e := c.Send("LPUSH", queueKey, m); e != nil {
			err = e
		}
	}
	if e := c.Flush(); e != nil {
		err = e
	}
	for range msgs {
		if err != nil {
			break
		}
		_, err = c.Receive()
	}
	return err
}
