package worker

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Config configures a Worker. The zero value means the defaults, which are
// those of the Omicsomics Python worker (celery_app.py) where they differ
// from Celery's own.
type Config struct {
	// Queues to consume, in kombu order. Default ["file_processing"].
	Queues []string
	// TaskDefaultQueue is celery's task_default_queue: where canvas
	// messages this worker sends (callbacks, chain steps, chord bodies,
	// errbacks) go when their signature names no queue. Default: the
	// first of Queues.
	TaskDefaultQueue string
	// Concurrency is the number of tasks run at once (celery -c). Default:
	// the number of CPUs.
	Concurrency int
	// PrefetchMultiplier bounds the messages held but not yet acknowledged
	// to Concurrency × PrefetchMultiplier (ETA-waiting messages do not
	// count). 0 means the default 1 (worker_prefetch_multiplier=1); a
	// negative value means unlimited (Celery's multiplier 0).
	PrefetchMultiplier int
	// AcksEarly acknowledges a message when its task starts (Celery's
	// default, --no-acks-late). The default false acknowledges after the
	// result is stored (acks_late): a crash never loses a started task,
	// tasks run at least once.
	AcksEarly bool
	// DisableTrackStarted stops writing the STARTED state before a task
	// runs (task_track_started=True is the default here).
	DisableTrackStarted bool
	// Hostname is the worker node name. Default "omics@<os hostname>".
	Hostname string
	// TimeLimit is the worker's hard time limit of a task (`celery worker
	// --time-limit`): it overrides a task's app default
	// (TaskOptions.AppTimeLimit); a message's timelimit header and a task's
	// own TimeLimit take precedence over it. 0 = not set (the app default,
	// if any, applies); negative = no limit, not even the app default
	// (`--time-limit 0`).
	TimeLimit time.Duration
	// SoftTimeLimit is the same for the soft time limit
	// (--soft-time-limit).
	SoftTimeLimit time.Duration
	// ShutdownTimeout is how long a warm shutdown waits for running tasks
	// before cancelling them and restoring their messages. Default 60 s;
	// negative = wait forever (Celery's behaviour).
	ShutdownTimeout time.Duration
	// VisibilityTimeout is the kombu visibility_timeout used by the
	// periodic restore of messages held by dead consumers. Default 3600 s.
	VisibilityTimeout time.Duration
	// RestoreInterval is the cadence of that restore (kombu: about 100 s);
	// each wait gets ±10 % jitter and one restore runs at start. Default
	// 100 s; negative disables the restore.
	RestoreInterval time.Duration
	// LeaseInterval is how often the unacked_index score of every held
	// message is refreshed, so that no consumer restores a message this
	// worker still holds (Python does not do this). Default
	// VisibilityTimeout/4 (at most 5 minutes, at least 100 ms); negative
	// disables leases.
	LeaseInterval time.Duration
	// ForwardUnknown, when set, is a queue that messages for unregistered
	// task names are moved to, unchanged, instead of failing them with
	// NotRegistered (so Python workers consuming that queue run them).
	ForwardUnknown string
	// MaxMessageSize rejects larger envelopes (FAILURE InvalidTaskError when
	// the task id is readable). Default 64 MiB; negative = no limit.
	MaxMessageSize int
	// FetchTimeout is how long one Fetch blocks (BRPOP timeout). Default 1 s.
	FetchTimeout time.Duration
	// Pid is reported in STARTED metas. Default os.Getpid().
	Pid int
	// RetryPause is the back-off after a broker error. Default 1 s.
	RetryPause time.Duration
	// Fairness limits how many tasks sharing a key (the uploading user of
	// a file task) run at once; the zero value means no limit.
	Fairness Fairness

	// hardTimer, when set (tests only), replaces time.NewTimer for the
	// hard time limit so a test can fire it at a chosen moment.
	hardTimer func(time.Duration) (<-chan time.Time, func() bool)
}

// DefaultQueue is the queue consumed when Config.Queues is empty
// (task_default_queue of the Omicsomics app).
const DefaultQueue = "file_processing"

// DefaultHostname returns "omics@<os hostname>".
func DefaultHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "omics@" + h
}

// ExpandHostname expands celery's node-name escapes: %h (full hostname),
// %n (name part), %d (domain part), %i and %I (pid), %% (percent).
func ExpandHostname(name string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	short, domain, _ := strings.Cut(host, ".")
	pid := strconv.Itoa(os.Getpid())
	r := strings.NewReplacer("%%", "%", "%h", host, "%n", short, "%d", domain, "%i", pid, "%I", pid)
	return r.Replace(name)
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	if len(c.Queues) == 0 {
		c.Queues = []string{DefaultQueue}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = runtime.NumCPU()
	}
	if c.PrefetchMultiplier == 0 {
		c.PrefetchMultiplier = 1
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname()
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 60 * time.Second
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = time.Hour
	}
	if c.RestoreInterval == 0 {
		c.RestoreInterval = 100 * time.Second
	}
	if c.LeaseInterval == 0 {
		c.LeaseInterval = min(max(c.VisibilityTimeout/4, 100*time.Millisecond), 5*time.Minute)
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = 64 << 20
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = time.Second
	}
	if c.Pid == 0 {
		c.Pid = os.Getpid()
	}
	if c.RetryPause <= 0 {
		c.RetryPause = time.Second
	}
	return c
}

// prefetchLimit is the base prefetch window; 0 = unlimited.
func (c Config) prefetchLimit() int {
	if c.PrefetchMultiplier < 0 {
		return 0
	}
	return c.Concurrency * c.PrefetchMultiplier
}
