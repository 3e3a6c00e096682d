// The "worker" subcommand: a drop-in for `celery -A app.celery_app worker`.
//
// Adding task families (hook for other files of this package): a file such
// as worker_filetasks.go registers its handlers without editing this file:
//
//	func init() {
//		addTaskRegistrar(taskRegistrar{
//			Name:  "file_tasks",
//			Flags: func(fs *flag.FlagSet) { /* optional extra flags */ },
//			Register: func(ctx context.Context, reg *worker.Registry, env taskEnv) (func(), error) {
//				// read env.Getenv("DATABASE_URL"), open pools, then
//				// reg.Register("app.tasks.file_tasks.process_file_async", h, worker.TaskOptions{...})
//				return closeFunc, nil // closeFunc (may be nil) runs after the worker stopped
//			},
//		})
//	}
//
// Registrars run in the order of their Name, after flag parsing and before
// the worker starts; an error aborts start-up with exit code 1.
//
// Worker extensions (remote control, events, metrics...) get the running
// *worker.Worker and the Redis broker the same way:
//
//	func init() {
//		addWorkerExtension(workerExtension{
//			Name:  "events",
//			Flags: func(fs *flag.FlagSet) { ... },
//			Start: func(ctx context.Context, w *worker.Worker, env extensionEnv) (func(), error) {
//				w.AddObserver(...) // before Run
//				go loop(ctx, env.Broker)   // ctx is cancelled after the worker stopped
//				return stop, nil           // stop (may be nil) runs after the worker stopped
//			},
//		})
//	}
//
// Extensions start in the order of their Name after worker.New and before
// Run; env.TaskEvents reports -E.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/diag"
)

// taskEnv is what a task registrar gets besides the registry.
type taskEnv struct {
	// Logger is the worker's logger.
	Logger *slog.Logger
	// Hostname is the worker node name.
	Hostname string
	// Getenv reads the process environment (replaceable in tests).
	Getenv func(string) string
	// Backend is the result backend the worker stores states with.
	Backend worker.ResultBackend
}

// taskRegistrar adds a family of task handlers to the worker.
type taskRegistrar struct {
	// Name identifies the registrar (logs, errors, ordering).
	Name string
	// Flags, if set, adds flags to the worker's flag set before parsing.
	Flags func(fs *flag.FlagSet)
	// Register adds handlers; the returned func, if not nil, runs after the
	// worker has stopped (close pools, files...).
	Register func(ctx context.Context, reg *worker.Registry, env taskEnv) (func(), error)
}

var taskRegistrars []taskRegistrar

// extensionEnv is what a worker extension gets.
type extensionEnv struct {
	Logger   *slog.Logger
	Hostname string
	Getenv   func(string) string
	// Broker and Backend are the Redis transport and result backend the
	// worker uses.
	Broker  *redistransport.Broker
	Backend *redistransport.ResultBackend
	// Config is the worker's effective configuration.
	Config worker.Config
	// TaskEvents is -E / --task-events.
	TaskEvents bool
}

// workerExtension runs alongside the worker runtime.
type workerExtension struct {
	// Name identifies the extension (logs, errors, ordering).
	Name string
	// Flags, if set, adds flags to the worker's flag set before parsing.
	Flags func(fs *flag.FlagSet)
	// Start runs after worker.New and before Run. ctx is cancelled once
	// the worker has stopped; the returned func (may be nil) runs then too.
	Start func(ctx context.Context, w *worker.Worker, env extensionEnv) (func(), error)
}

var workerExtensions []workerExtension

// addWorkerExtension is called from init() functions of this package.
func addWorkerExtension(e workerExtension) { workerExtensions = append(workerExtensions, e) }

// addTaskRegistrar is called from init() functions of this package.
func addTaskRegistrar(r taskRegistrar) { taskRegistrars = append(taskRegistrars, r) }

func init() {
	register("worker", "consume Celery tasks from Redis (like `celery worker`)", runWorker)
}

// workerOptions are the parsed flags and environment.
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
}

const defaultRedisURL = "redis://localhost:6379/0"

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
	for _, r := range taskRegistrars {
		if r.Flags != nil {
			r.Flags(fs)
		}
	}
	for _, e := range workerExtensions {
		if e.Flags != nil {
			e.Flags(fs)
		}
	}
	return fs
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
	if !given("b", "broker") {
		o.brokerURL = cmpOr(getenv("CELERY_BROKER_URL"), defaultRedisURL)
	}
	if !given("result-backend") {
		o.backendURL = cmpOr(getenv("CELERY_RESULT_BACKEND"), defaultRedisURL)
	}
	if !given("l", "loglevel") {
		if v := getenv("LOG_LEVEL"); v != "" {
			o.loglevel = v
		}
	}
	if !given("log-format") {
		if v := getenv("LOG_FORMAT"); v != "" {
			o.logformat = v
		}
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
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "error", "critical", "fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (debug, info, warning, error, critical)", s)
}

// maskAttr is the last line of defence against a secret in a log line:
// every string and error value (the message included) goes through
// mask.Text, so a URL that reached a log call unmasked (inside a library's
// error text, say) is masked all the same.
func maskAttr(_ []string, a slog.Attr) slog.Attr {
	switch v := a.Value; v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.Contains(s, "://") || strings.Contains(s, "assword") {
			a.Value = slog.StringValue(mask.Text(s))
		}
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			if s := err.Error(); s != mask.Text(s) {
				a.Value = slog.StringValue(mask.Text(s))
			}
		}
	}
	return a
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lv, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: maskAttr}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (text, json)", format)
}

func seconds(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

// flagLimit is worker.Config's value of a --time-limit/--soft-time-limit
// flag: not given = 0 (the tasks' app defaults apply); given = that limit,
// or negative (no limit at all, overriding the app defaults, as `celery
// worker --time-limit 0` does) when not positive.
func flagLimit(sec float64, given bool) time.Duration {
	switch {
	case !given:
		return 0
	case sec <= 0:
		return -1
	}
	return seconds(sec)
}

// workerConfig turns options into the runtime's Config.
func workerConfig(o *workerOptions) (worker.Config, error) {
	var queues []string
	for q := range strings.SplitSeq(o.queues, ",") {
		if q = strings.TrimSpace(q); q != "" {
			queues = append(queues, q)
		}
	}
	if len(queues) == 0 {
		return worker.Config{}, errors.New("no queue given (-Q)")
	}
	if o.concurrency < 0 {
		return worker.Config{}, fmt.Errorf("concurrency %d: must be positive", o.concurrency)
	}
	if o.visibilityTimeout <= 0 {
		return worker.Config{}, errors.New("--visibility-timeout must be positive")
	}
	cfg := worker.Config{
		Queues:             queues,
		Concurrency:        o.concurrency,
		PrefetchMultiplier: o.prefetch,
		AcksEarly:          o.noAcksLate,
		Hostname:           worker.ExpandHostname(o.hostname),
		TimeLimit:          flagLimit(o.timeLimit, o.timeLimitSet),
		SoftTimeLimit:      flagLimit(o.softTimeLimit, o.softTimeLimitSet),
		ShutdownTimeout:    seconds(o.shutdownTimeout),
		VisibilityTimeout:  seconds(o.visibilityTimeout),
		RestoreInterval:    seconds(o.restoreInterval),
		ForwardUnknown:     o.forwardUnknown,
		Fairness:           worker.Fairness{MaxPerKey: o.maxPerUser},
		MaxMessageSize:     o.maxMessageSize,
	}
	if o.prefetch == 0 {
		cfg.PrefetchMultiplier = -1 // celery: 0 = unlimited
	}
	if o.shutdownTimeout == 0 {
		cfg.ShutdownTimeout = time.Nanosecond // do not wait (Config's 0 means the default)
	}
	if o.restoreInterval == 0 {
		cfg.RestoreInterval = -1
	}
	return cfg, nil
}

func runWorker(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o workerOptions
	fs := newWorkerFlags(&o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "omics-worker worker: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := applyEnv(fs, &o, os.Getenv); err != nil {
		fmt.Fprintf(stderr, "omics-worker worker: %v\n", err)
		return 2
	}
	logOut := stderr
	if o.logfile != "" {
		f, err := os.OpenFile(o.logfile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "omics-worker worker: --logfile: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	logger, err := newLogger(logOut, o.loglevel, o.logformat)
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker worker: %v\n", err)
		return 2
	}
	cfg, err := workerConfig(&o)
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker worker: %v\n", err)
		return 2
	}

	if o.pidfile != "" {
		if err := os.WriteFile(o.pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			logger.Error("--pidfile", "err", err)
			return 1
		}
		defer os.Remove(o.pidfile)
	}

	// Two-phase signals: the first SIGINT/SIGTERM starts a warm shutdown,
	// the second makes it cold.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	code, cleanup := startWorker(runCtx, &o, cfg, logger, sigs, stop)
	for _, c := range cleanup {
		c()
	}
	return code
}

// startWorker wires broker, backend, registry and runtime, then runs until
// shutdown. It returns the exit code and the cleanups to run.
func startWorker(ctx context.Context, o *workerOptions, cfg worker.Config, logger *slog.Logger,
	sigs <-chan os.Signal, stop context.CancelFunc) (int, []func()) {
	var cleanup []func()
	rcfg := redistransport.Config{
		VisibilityTimeout: cfg.VisibilityTimeout,
		Logger:            logger.With("component", "redis"),
		ClientName:        cfg.Hostname,
	}
	if o.resultExpires > 0 {
		rcfg.ResultExpires = seconds(o.resultExpires)
	} else {
		rcfg.ResultExpires = -1
	}
	broker, err := redistransport.NewBroker(o.brokerURL, rcfg)
	if err != nil {
		logger.Error("broker URL", "err", err, "url", mask.URL(o.brokerURL))
		return 1, cleanup
	}
	cleanup = append(cleanup, func() { _ = broker.Close() })
	if !strings.HasPrefix(o.backendURL, "redis") && !strings.HasPrefix(o.backendURL, "unix") {
		logger.Error("unsupported result backend: only redis://, rediss:// and unix:// are supported",
			"url", mask.URL(o.backendURL))
		return 1, cleanup
	}
	backend, err := redistransport.NewResultBackend(o.backendURL, rcfg)
	if err != nil {
		logger.Error("result backend URL", "err", err, "url", mask.URL(o.backendURL))
		return 1, cleanup
	}
	cleanup = append(cleanup, func() { _ = backend.Close() })
	backend.UseBroker(broker) // StoreAndAck: result + ack in one round trip

	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = broker.Ping(pingCtx)
	cancel()
	if err != nil {
		logger.Error("cannot reach the broker", "err", err, "url", mask.URL(o.brokerURL),
			"hint", "is Redis running? set CELERY_BROKER_URL or -b")
		return 1, cleanup
	}

	reg := worker.NewRegistry()
	if o.diagnostic {
		if err := diag.Register(reg); err != nil {
			logger.Error("registering diagnostic tasks", "err", err)
			return 1, cleanup
		}
	}
	regs := append([]taskRegistrar(nil), taskRegistrars...)
	sort.SliceStable(regs, func(i, k int) bool { return regs[i].Name < regs[k].Name })
	env := taskEnv{Logger: logger, Hostname: cfg.Hostname, Getenv: os.Getenv, Backend: backend}
	for _, r := range regs {
		if r.Register == nil {
			continue
		}
		c, err := r.Register(ctx, reg, env)
		if err != nil {
			logger.Error("registering tasks", "registrar", r.Name, "err", err)
			return 1, cleanup
		}
		if c != nil {
			cleanup = append(cleanup, c)
		}
	}
	if len(reg.Names()) == 0 {
		logger.Warn("no tasks registered: every message will fail with NotRegistered",
			"hint", "use --diagnostic-tasks or build with the file tasks")
	}

	w, err := worker.New(cfg, broker, backend, reg, logger)
	if err != nil {
		logger.Error("worker", "err", err)
		return 1, cleanup
	}
	extCtx, extCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer extCancel() // runs before the cleanups: extensions stop first
	exts := append([]workerExtension(nil), workerExtensions...)
	sort.SliceStable(exts, func(i, k int) bool { return exts[i].Name < exts[k].Name })
	xenv := extensionEnv{Logger: logger, Hostname: cfg.Hostname, Getenv: os.Getenv, Broker: broker,
		Backend: backend, Config: w.Config(), TaskEvents: o.taskEvents}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	for _, e := range exts {
		if e.Start == nil {
			continue
		}
		stop, err := e.Start(extCtx, w, xenv)
		if err != nil {
			logger.Error("starting worker extension", "extension", e.Name, "err", err)
			return 1, cleanup
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				logger.Info("signal received: warm shutdown (send again for a cold shutdown)")
				stop()
				continue
			}
			logger.Warn("second signal: cold shutdown")
			w.ColdShutdown()
		}
	}()
	if err := w.Run(ctx); err != nil {
		logger.Error("worker failed", "err", err)
		return 1, cleanup
	}
	return 0, cleanup
}
