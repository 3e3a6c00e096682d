// The "worker" subcommand: a drop-in for `celery -A app.celery_app worker`.
//
// runWorker wires, in this order: logger, broker and result backend
// (protocol/transport/redistransport), the task registry (diag tasks,
// the file tasks of worker_filetasks.go), the runtime (worker.New), the
// control side (worker_control.go: remote control, events, mingle,
// statedb, metrics), then runs until shutdown. Its options come from
// options.go.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/omicsomics/omics-worker/internal/logging"
	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/diag"
)

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
	o, code := parseWorkerOptions(args, stderr, os.Getenv)
	if o == nil {
		return code
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
	logger, err := logging.New(logOut, o.loglevel, o.logformat)
	if err != nil {
		fmt.Fprintf(stderr, "omics-worker worker: %v\n", err)
		return 2
	}
	cfg, err := workerConfig(o)
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

	code, cleanup := startWorker(runCtx, o, cfg, logger, sigs, stop)
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
		ReplySpin:         o.replySpinConfig(),
	}
	if o.resultExpires > 0 {
		rcfg.ResultExpires = seconds(o.resultExpires)
	} else {
		rcfg.ResultExpires = -1
	}
	bcfg, rbcfg, vis := o.transport.redisTransportOptionsApply(rcfg, cfg.VisibilityTimeout, !isAMQP(o.brokerURL), logger)
	cfg.VisibilityTimeout = vis
	broker, bmeta, err := newBroker(o, cfg, bcfg, logger)
	if err != nil {
		logger.Error("broker URL", "err", err, "url", mask.URL(o.brokerURL))
		return 1, cleanup
	}
	cleanup = append(cleanup, func() { _ = broker.Close() })
	if !strings.HasPrefix(o.backendURL, "redis") && !strings.HasPrefix(o.backendURL, "unix") &&
		!strings.HasPrefix(o.backendURL, "sentinel") {
		logger.Error("unsupported result backend: only redis://, rediss://, unix:// and sentinel:// are supported",
			"url", mask.URL(o.backendURL))
		return 1, cleanup
	}
	backend, err := redistransport.NewResultBackend(o.backendURL, rbcfg)
	if err != nil {
		logger.Error("result backend URL", "err", err, "url", mask.URL(o.backendURL))
		return 1, cleanup
	}
	cleanup = append(cleanup, func() { _ = backend.Close() })

	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = broker.Ping(pingCtx)
	cancel()
	if err != nil {
		logger.Error("cannot reach the broker", "err", err, "url", mask.URL(o.brokerURL),
			"hint", "is the broker (Redis or RabbitMQ) running? set CELERY_BROKER_URL or -b")
		return 1, cleanup
	}

	reg := worker.NewRegistry()
	if o.diagnostic {
		if err := diag.Register(reg); err != nil {
			logger.Error("registering diagnostic tasks", "err", err)
			return 1, cleanup
		}
	}
	if o.files.enabled {
		c, err := registerFileTasks(ctx, reg, logger, o.files)
		if err != nil {
			logger.Error("registering tasks", "registrar", "file_tasks", "err", err)
			return 1, cleanup
		}
		cleanup = append(cleanup, c)
	}
	if len(reg.Names()) == 0 {
		logger.Warn("no tasks registered: every message will fail with NotRegistered",
			"hint", "use --diagnostic-tasks or build with the file tasks")
	}

	w, err := worker.New(cfg, broker, resultsFor(broker, backend), reg, logger)
	if err != nil {
		logger.Error("worker", "err", err)
		return 1, cleanup
	}
	extCtx, extCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer extCancel() // runs before the cleanups: extensions stop first
	ctl, err := startControl(extCtx, w, broker, bmeta, logger, o)
	if err != nil {
		logger.Error("starting worker extension", "extension", "control", "err", err)
		return 1, cleanup
	}
	defer ctl.stop()
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
