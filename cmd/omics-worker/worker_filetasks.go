// Registers the Omicsomics file tasks (worker/tasks) with the worker,
// configured (options.go) from the environment of the upstream
// celery-worker service: DATABASE_URL, OBJECT_STORAGE_ENDPOINT/
// _ACCESS_KEY/_SECRET_KEY/_BUCKET and MASTER_KEY (see docs/tasks.md). The
// database pool opens on first use (postgres.Lazy).
package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask"
	_ "github.com/omicsomics/omics-worker/processing/all" // every converter
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

// sweepInterval is how often the worker settles uncommitted uploads of
// dead runs (tasks.Processor.Sweep).
const sweepInterval = 10 * time.Minute

// registerFileTasks registers the file tasks with reg and starts the
// sweeper; the returned func stops the sweeper and closes the database
// pool (after the worker stopped).
func registerFileTasks(ctx context.Context, reg *worker.Registry, logger *slog.Logger, o fileTaskOptions) (func(), error) {
	log := logger.With("component", "file_tasks")
	master := o.masterKey
	if master == "" {
		master = tasks.DefaultMasterKey
		log.Warn("MASTER_KEY is not set: using the Omicsomics development default (as the backend does); set MASTER_KEY in production")
	}
	keys, err := tasks.NewMasterKeyring(master)
	if err != nil {
		return nil, err
	}
	ocfg := o.objects
	ocfg.Logger = log
	objects, err := openObjectStore(ctx, ocfg)
	if err != nil {
		return nil, err
	}
	if _, err := postgres.ParseDatabaseURL(o.databaseURL); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	files := postgres.NewLazy(postgres.Config{URL: o.databaseURL, Logger: log, MaxConns: int32(o.dbConns)})
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if _, err := files.Store(pingCtx); err != nil {
		log.Warn("database not reachable yet; the file tasks will connect on first use (and retry)", "err", err)
	}
	cancel()
	cfg := tasks.Config{Files: files, Objects: objects, Keys: keys, Logger: log, TempDir: o.tmpDir,
		RetryBase: seconds(o.retry), IsTransient: storageIsTransient}
	if err := tasks.Register(reg, cfg); err != nil {
		return nil, err
	}
	log.Info("file tasks registered", "tasks", []string{tasks.ProcessFileTask, tasks.ProcessLargeFileTask},
		"object_storage", mask.URL(cmp.Or(ocfg.Endpoint, defaultObjectEndpoint)), "bucket", cmp.Or(ocfg.Bucket, defaultObjectBucket))
	// Settle uploads that dead runs left uncommitted: at start, then
	// every sweepInterval (docs/tasks.md).
	sweeper, err := tasks.New(cfg)
	if err != nil {
		return nil, err
	}
	sweepCtx, stopSweep := context.WithCancel(ctx)
	swept := make(chan struct{})
	go func() { defer close(swept); sweeper.SweepLoop(sweepCtx, sweepInterval) }()
	return func() { stopSweep(); <-swept; files.Close() }, nil
}
