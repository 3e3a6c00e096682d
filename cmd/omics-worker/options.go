// Flags and environment of every subcommand, resolved once, here, into
// the options structs the subcommands wire from. No other file of this
// package reads the environment or declares a flag.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/loadgen"
	"github.com/omicsomics/omics-worker/worker"
)

const (
	// defaultRedisURL is the broker and result backend when neither flag
	// nor environment names one.
	defaultRedisURL = "redis://localhost:6379/0"
	// defaultDatabaseURL is the Python settings' default DATABASE_URL.
	defaultDatabaseURL = "postgresql+asyncpg://postgres:postgres@db:5432/omicsomics"
	// defaultHealthcheckURL is what `healthcheck` probes.
	defaultHealthcheckURL = "http://127.0.0.1:9808/readyz"
)

// workerOptions are the parsed flags and environment of `worker`.
type workerOptions struct {
	queues            string
	concurrency       int
	hostname          string
	loglevel          string
	logformat         string
	taskEvents        bool
	prefetch          int
	timeLimit         float64
	softTimeLimit     float64
	timeLimitSet      bool // --time-limit given: overrides the tasks' app defaults, 0 included
	softTimeLimitSet  bool
	visibilityTimeout float64
	resultExpires     float64
	replySpin         time.Duration
	replySpinSet      bool // --reply-spin given (else the transport's default)
	acksLate          bool
	noAcksLate        bool
	forwardUnknown    string
	diagnostic        bool
	shutdownTimeout   float64
	restoreInterval   float64
	maxPerUser        int
	maxMessageSize    int
	brokerURL         string
	backendURL        string
	app               string
	pool              string
	pidfile           string
	logfile           string
	ignoredStr        string
	ignoredInt        int
	control           controlOptions
	files             fileTaskOptions
	transport         transportOptionFlags // transport_options.go
}

// controlOptions configure remote control, events, mingle, statedb and
// the metrics endpoint (worker_control.go).
type controlOptions struct {
	metricsAddr       string
	statedb           string
	withoutMingle     bool
	withoutHeartbeat  bool
	withoutGossip     bool
	withoutControl    bool
	heartbeatInterval float64
	// revokesMax / revokeExpires bound the revoked set; celery 5.5 reads
	// them from CELERY_WORKER_REVOKES_MAX / CELERY_WORKER_REVOKE_EXPIRES
	// (5.2 has the constants only). 0 = unlimited / never, as Python's
	// LimitedSet; unset = celery's defaults (50000, 10800 s).
	revokesMax    int
	revokeExpires float64
	revokesSet    bool
	expiresSet    bool
}

// fileTaskOptions configure the Omicsomics file tasks
// (worker_filetasks.go), from the environment of the upstream
// celery-worker service.
type fileTaskOptions struct {
	enabled     bool
	tmpDir      string
	dbConns     int
	retry       float64
	databaseURL string
	masterKey   string // "" = tasks.DefaultMasterKey, with a warning
	objects     objectStoreConfig
}

func newWorkerFlags(o *workerOptions, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("omics-worker worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(p *string, short, long, def, usage string) {
		if short != "" {
			fs.StringVar(p, short, def, "short for --"+long)
		}
		fs.StringVar(p, long, def, usage)
	}
	integer := func(p *int, short, long string, def int, usage string) {
		if short != "" {
			fs.IntVar(p, short, def, "short for --"+long)
		}
		fs.IntVar(p, long, def, usage)
	}
	str(&o.queues, "Q", "queues", worker.DefaultQueue, "comma-separated queues to consume")
	integer(&o.concurrency, "c", "concurrency", 0, "tasks run at once (default: number of CPUs)")
	str(&o.hostname, "n", "hostname", "omics@%h", "node name; %h, %n, %d, %i expand as in celery")
	str(&o.loglevel, "l", "loglevel", "info", "log level: debug, info, warning, error, critical (env LOG_LEVEL)")
	str(&o.logformat, "", "log-format", "text", "log format: text or json (env LOG_FORMAT)")
	fs.BoolVar(&o.taskEvents, "E", false, "short for --task-events")
	fs.BoolVar(&o.taskEvents, "task-events", false, "send task events (task-received, -started, -succeeded, ...; see docs/control.md)")
	fs.IntVar(&o.prefetch, "prefetch-multiplier", 1, "messages held per concurrency slot; 0 = unlimited")
	fs.Float64Var(&o.timeLimit, "time-limit", 0, "hard time limit in seconds; overrides the file tasks' app default 3600 (0 = none)")
	fs.Float64Var(&o.softTimeLimit, "soft-time-limit", 0, "soft time limit in seconds; overrides the file tasks' app default 3300 (0 = none)")
	fs.Float64Var(&o.visibilityTimeout, "visibility-timeout", 3600, "kombu visibility_timeout in seconds")
	fs.Float64Var(&o.resultExpires, "result-expires", 86400, "result_expires in seconds (0 = never)")
	fs.DurationVar(&o.replySpin, "reply-spin", 100*time.Microsecond, "Redis result writes: poll the socket this long for a reply before sleeping (0 = never poll; default: 100µs with 2 or more CPUs, off with one; docs/redis.md)")
	fs.BoolVar(&o.acksLate, "acks-late", true, "acknowledge after the task finished (default)")
	fs.BoolVar(&o.noAcksLate, "no-acks-late", false, "acknowledge when the task starts (Celery's default)")
	str(&o.forwardUnknown, "", "forward-unknown", "", "move messages of unregistered tasks to this queue instead of failing them")
	fs.BoolVar(&o.diagnostic, "diagnostic-tasks", false, "register the diag.* tasks (env OMICS_WORKER_DIAGNOSTIC_TASKS=1)")
	fs.Float64Var(&o.shutdownTimeout, "shutdown-timeout", 60, "warm shutdown: seconds to wait for running tasks (negative = forever)")
	fs.Float64Var(&o.restoreInterval, "restore-interval", 100, "seconds between restores of messages past the visibility timeout (negative = never)")
	fs.IntVar(&o.maxMessageSize, "max-message-size", 64<<20, "reject task messages larger than this many bytes (FAILURE InvalidTaskError; negative = no limit)")
	fs.IntVar(&o.maxPerUser, "max-per-user", 0, "at most N file tasks of one uploading user run at once; the others wait, leased (0 = no limit; docs/hardening.md)")
	str(&o.brokerURL, "b", "broker", "", "broker URL (env CELERY_BROKER_URL, default "+defaultRedisURL+")")
	str(&o.backendURL, "", "result-backend", "", "result backend URL (env CELERY_RESULT_BACKEND, default "+defaultRedisURL+")")
	str(&o.app, "A", "app", "", "accepted for compatibility with `celery -A app worker`; ignored")
	str(&o.pool, "P", "pool", "", "accepted for compatibility; tasks always run as goroutines")
	str(&o.pidfile, "", "pidfile", "", "write the process id to this file (removed at exit)")
	str(&o.logfile, "f", "logfile", "", "append logs to this file instead of stderr")
	// Other celery worker options, accepted so that an existing command
	// line keeps working; they have no effect here.
	fs.StringVar(&o.ignoredStr, "O", "", "accepted for compatibility; ignored")
	fs.StringVar(&o.ignoredStr, "autoscale", "", "accepted for compatibility; ignored")
	fs.IntVar(&o.ignoredInt, "max-tasks-per-child", 0, "accepted for compatibility; ignored (no child processes)")
	fs.IntVar(&o.ignoredInt, "max-memory-per-child", 0, "accepted for compatibility; ignored (no child processes)")
	addFileTaskFlags(fs, &o.files)
	addControlFlags(fs, &o.control)
	addTransportOptionFlags(fs, &o.transport)
	return fs
}

func addFileTaskFlags(fs *flag.FlagSet, f *fileTaskOptions) {
	fs.BoolVar(&f.enabled, "file-tasks", true,
		"register app.tasks.file_tasks.process_file_async and process_large_file_async (needs DATABASE_URL, OBJECT_STORAGE_*, MASTER_KEY)")
	fs.StringVar(&f.tmpDir, "tmp-dir", "", "directory for temporary files of the file tasks (env OMICS_WORKER_TMPDIR, default the system's)")
	fs.Float64Var(&f.retry, "file-tasks-retry-delay", 2,
		"seconds before the first retry of a transient database/storage error; doubled for each of the 3 retries")
	fs.IntVar(&f.dbConns, "db-pool-size", 0, "PostgreSQL connections of the file tasks (default: concurrency + 1)")
}

func addControlFlags(fs *flag.FlagSet, c *controlOptions) {
	fs.StringVar(&c.metricsAddr, "metrics-addr", "",
		"serve Prometheus /metrics, /healthz and /readyz on this address (e.g. :9808; env OMICS_WORKER_METRICS_ADDR)")
	fs.StringVar(&c.statedb, "statedb", "",
		"file keeping revoked task ids (and the logical clock) across restarts (like celery --statedb; env OMICS_WORKER_STATEDB)")
	fs.BoolVar(&c.withoutMingle, "without-mingle", false, "do not sync revoked ids and clock with other workers at start-up")
	fs.BoolVar(&c.withoutHeartbeat, "without-heartbeat", false, "send no worker heartbeats (worker events stay on with -E)")
	fs.BoolVar(&c.withoutGossip, "without-gossip", false, "accepted for compatibility (the Go worker does not listen to gossip)")
	fs.BoolVar(&c.withoutControl, "without-control", false, "do not answer remote-control commands (inspect/control/status)")
	fs.Float64Var(&c.heartbeatInterval, "heartbeat-interval", 2, "seconds between worker-heartbeat events (sent as freq)")
}

// applyEnv fills options not given as flags from the environment.
func applyEnv(fs *flag.FlagSet, o *workerOptions, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	given := func(names ...string) bool {
		for _, n := range names {
			if set[n] {
				return true
			}
		}
		return false
	}
	o.timeLimitSet, o.softTimeLimitSet = given("time-limit"), given("soft-time-limit")
	o.replySpinSet = given("reply-spin")
	if !given("b", "broker") {
		o.brokerURL = cmp.Or(getenv("CELERY_BROKER_URL"), defaultRedisURL)
	}
	if !given("result-backend") {
		o.backendURL = cmp.Or(getenv("CELERY_RESULT_BACKEND"), defaultRedisURL)
	}
	if !given("l", "loglevel") {
		o.loglevel = cmp.Or(getenv("LOG_LEVEL"), o.loglevel)
	}
	if !given("log-format") {
		o.logformat = cmp.Or(getenv("LOG_FORMAT"), o.logformat)
	}
	if !given("diagnostic-tasks") {
		if v := getenv("OMICS_WORKER_DIAGNOSTIC_TASKS"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("OMICS_WORKER_DIAGNOSTIC_TASKS=%q: want 1/0/true/false", v)
			}
			o.diagnostic = b
		}
	}
	if o.noAcksLate && given("acks-late") && o.acksLate {
		return errors.New("--acks-late and --no-acks-late are both given")
	}
	// An empty flag value takes the environment's.
	o.control.metricsAddr = cmp.Or(o.control.metricsAddr, getenv("OMICS_WORKER_METRICS_ADDR"))
	o.control.statedb = cmp.Or(o.control.statedb, getenv("OMICS_WORKER_STATEDB"))
	if err := revokedLimitsFromEnv(&o.control, getenv); err != nil {
		return err
	}
	o.files.tmpDir = cmp.Or(o.files.tmpDir, getenv("OMICS_WORKER_TMPDIR"))
	o.files.databaseURL = cmp.Or(getenv("DATABASE_URL"), defaultDatabaseURL)
	o.files.masterKey = getenv("MASTER_KEY")
	o.files.objects = objectStoreConfigFromEnv(getenv)
	return redisTransportOptionsEnv(&o.transport, set, getenv)
}

// parseWorkerOptions parses the worker's command line and environment;
// nil with the exit code when it fails (0 for -h).
// replySpinConfig is redistransport.Config.ReplySpin for --reply-spin:
// the transport's default (0) unless the flag was given, then the value,
// or -1 (never poll) for 0.
func (o *workerOptions) replySpinConfig() time.Duration {
	switch {
	case !o.replySpinSet:
		return 0
	case o.replySpin <= 0:
		return -1
	}
	return o.replySpin
}

func parseWorkerOptions(args []string, stderr io.Writer, getenv func(string) string) (*workerOptions, int) {
	o := &workerOptions{}
	fs := newWorkerFlags(o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "omics-worker worker: unexpected arguments %q\n", fs.Args())
		return nil, 2
	}
	if err := applyEnv(fs, o, getenv); err != nil {
		fmt.Fprintf(stderr, "omics-worker worker: %v\n", err)
		return nil, 2
	}
	return o, 0
}

// parseLoadgenOptions parses `loadgen`'s command line and environment
// into the run's configuration; nil with the exit code when it fails
// (0 for -h).
func parseLoadgenOptions(args []string, stderr io.Writer, getenv func(string) string) (*loadgen.Config, int) {
	var cfg loadgen.Config
	fs := flag.NewFlagSet("omics-worker loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	fs.BoolVar(&cfg.Prefill, "prefill", false, "stop the --pid process tree (SIGSTOP) while publishing, then continue it and measure from the resume (a pre-filled queue)")
	fs.BoolVar(&cfg.RedisStats, "redis-stats", false, "report INFO stats/commandstats deltas per task (use a private Redis)")
	fs.StringVar(&cfg.ReadyFile, "ready-file", "", "create this file when every task is published")
	fs.StringVar(&cfg.Label, "label", "", "label copied into the JSON report")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "omics-worker loadgen: unexpected arguments %q\n", fs.Args())
		return nil, 2
	}
	var err error
	if cfg.Args, cfg.Kwargs, err = loadgen.ParseArgs(argsJSON, kwargsJSON); err != nil {
		fmt.Fprintf(stderr, "omics-worker loadgen: %v\n", err)
		return nil, 2
	}
	cfg.BrokerURL = cmp.Or(cfg.BrokerURL, cmp.Or(getenv("CELERY_BROKER_URL"), defaultRedisURL))
	cfg.BackendURL = cmp.Or(cfg.BackendURL, cmp.Or(getenv("CELERY_RESULT_BACKEND"), defaultRedisURL))
	return &cfg, 0
}

// healthcheckOptions are `healthcheck`'s flags.
type healthcheckOptions struct {
	url     string
	timeout time.Duration
	quiet   bool
}

// parseHealthcheckOptions: nil with the exit code when parsing fails.
func parseHealthcheckOptions(args []string, stderr io.Writer, getenv func(string) string) (*healthcheckOptions, int) {
	o := &healthcheckOptions{}
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", cmp.Or(getenv("OMICS_WORKER_HEALTHCHECK_URL"), defaultHealthcheckURL), "URL to probe (env OMICS_WORKER_HEALTHCHECK_URL)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Second, "give up after this long")
	fs.BoolVar(&o.quiet, "q", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return nil, 2
	}
	if fs.NArg() > 0 {
		o.url = fs.Arg(0)
	}
	return o, 0
}

// demoOptions are `demo-seed`'s flags and environment.
type demoOptions struct {
	dir, adminDB, planFile, queue string
	recreate, enqueue             bool
	timeout                       time.Duration
	brokerURL, backendURL         string
	databaseURL, masterKey        string
	objects                       objectStoreConfig
}

// parseDemoOptions: nil with the exit code when parsing fails (0 for -h).
func parseDemoOptions(args []string, stderr io.Writer, getenv func(string) string) (*demoOptions, int) {
	o := &demoOptions{}
	fs := flag.NewFlagSet("omics-worker demo-seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "testdata/demo", "directory of input files (one raw row each)")
	fs.BoolVar(&o.recreate, "recreate", false, "drop and create the database of DATABASE_URL first")
	fs.StringVar(&o.adminDB, "admin-db", "postgres", "database to connect to for --recreate")
	fs.BoolVar(&o.enqueue, "enqueue", false, "send the tasks with our own Celery producer and print the final statuses (no Python needed)")
	fs.StringVar(&o.planFile, "plan", "", "with --enqueue: enqueue the files of this plan (output of an earlier demo-seed) instead of seeding")
	fs.StringVar(&o.queue, "queue", "file_processing", "queue for --enqueue")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "how long --enqueue waits for the results")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, 0
		}
		return nil, 2
	}
	o.brokerURL = cmp.Or(getenv("CELERY_BROKER_URL"), defaultRedisURL)
	o.backendURL = cmp.Or(getenv("CELERY_RESULT_BACKEND"), defaultRedisURL)
	o.databaseURL = cmp.Or(getenv("DATABASE_URL"), defaultDatabaseURL)
	o.masterKey = getenv("MASTER_KEY")
	o.objects = objectStoreConfigFromEnv(getenv)
	return o, 0
}

// convertOptions are `convert`'s flags.
type convertOptions struct {
	file, out                     string
	sampleID, organism, refGenome string
	omics, format, name           string
	projectID                     int64
	fallback, quiet               bool
}

// parseConvertOptions parses `convert`'s command line (flags may follow
// FILE too); nil with the exit code when it fails (0 for -h).
func parseConvertOptions(args []string, stderr io.Writer) (*convertOptions, int) {
	o := &convertOptions{}
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.out, "o", "", "write the JSON to this file instead of stdout")
	fs.StringVar(&o.sampleID, "sample-id", "", "sample id (default sample_<project-id>_<file stem>)")
	fs.StringVar(&o.organism, "organism", "", "organism for metadata.organism")
	fs.StringVar(&o.refGenome, "reference-genome", "", "reference genome for metadata.reference_genome")
	fs.Int64Var(&o.projectID, "project-id", 0, "project id used in the default sample id")
	fs.StringVar(&o.omics, "omics-type", "", "force the omics type (genomics, transcriptomics, proteomics, metabolomics, ...)")
	fs.StringVar(&o.format, "format", "", "force the source format (vcf, bed, gtf, gff, csv, tsv, fasta, fastq, mzml, mzxml, mgf)")
	fs.StringVar(&o.name, "name", "", "original file name for detection (default: FILE's name)")
	fs.BoolVar(&o.fallback, "fallback", false, "write the Python raw fallback document when the file cannot be converted")
	fs.BoolVar(&o.quiet, "q", false, "no summary and no progress bar on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: omics-worker convert FILE [-o OUT.json] [--sample-id ID] [--organism O] [--reference-genome G] [--project-id N]")
		fs.PrintDefaults()
	}
	// Accept flags after FILE too.
	var files []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0
			}
			return nil, 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return nil, 2
	}
	o.file = files[0]
	return o, 0
}

// revokedLimitsFromEnv reads celery 5.5's CELERY_WORKER_REVOKES_MAX (an
// integer) and CELERY_WORKER_REVOKE_EXPIRES (seconds, a float), the limits
// of the revoked set (celery/worker/state.py). Python fails at import on a
// value int()/float() refuses; so does the Go worker, at start-up.
func revokedLimitsFromEnv(c *controlOptions, getenv func(string) string) error {
	if v := strings.TrimSpace(getenv("CELERY_WORKER_REVOKES_MAX")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("CELERY_WORKER_REVOKES_MAX=%q: want a whole number >= 0 (0: unlimited)", v)
		}
		c.revokesMax, c.revokesSet = n, true
	}
	if v := strings.TrimSpace(getenv("CELERY_WORKER_REVOKE_EXPIRES")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("CELERY_WORKER_REVOKE_EXPIRES=%q: want seconds >= 0 (0: never)", v)
		}
		c.revokeExpires, c.expiresSet = f, true
	}
	return nil
}

// applyRevokedLimits sets the revoked set's bounds from the options.
func applyRevokedLimits(rv *worker.RevokedSet, c controlOptions) {
	const never = 100 * 365 * 24 * time.Hour
	if c.revokesSet {
		rv.MaxLen = c.revokesMax
		if rv.MaxLen == 0 {
			rv.MaxLen = math.MaxInt
		}
	}
	if c.expiresSet {
		rv.Expires = max(seconds(c.revokeExpires), time.Nanosecond)
		if c.revokeExpires == 0 {
			rv.Expires = never
		}
	}
}
