// Registers the Omicsomics file tasks (worker/tasks) with the worker,
// configured from the environment of the upstream celery-worker service:
// DATABASE_URL, OBJECT_STORAGE_ENDPOINT/_ACCESS_KEY/_SECRET_KEY/_BUCKET and
// MASTER_KEY (see docs/tasks.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask"
	_ "github.com/omicsomics/omics-worker/processing/all" // every converter
	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/tasks"
)

// sweepInterval is how often the worker settles uncommitted uploads of
// dead runs (tasks.Processor.Sweep).
const sweepInterval = 10 * time.Minute

// defaultDatabaseURL is the Python settings' default DATABASE_URL.
const defaultDatabaseURL = "postgresql+asyncpg://postgres:postgres@db:5432/omicsomics"

var fileTaskFlags struct {
	enabled bool
	tmpDir  string
	dbConns int
	retry   float64
}

func init() {
	addTaskRegistrar(taskRegistrar{
		Name: "file_tasks",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&fileTaskFlags.enabled, "file-tasks", true,
				"register app.tasks.file_tasks.process_file_async and process_large_file_async (needs DATABASE_URL, OBJECT_STORAGE_*, MASTER_KEY)")
			fs.StringVar(&fileTaskFlags.tmpDir, "tmp-dir", "", "directory for temporary files of the file tasks (env OMICS_WORKER_TMPDIR, default the system's)")
			fs.Float64Var(&fileTaskFlags.retry, "file-tasks-retry-delay", 2,
				"seconds before the first retry of a transient database/storage error; doubled for each of the 3 retries")
			fs.IntVar(&fileTaskFlags.dbConns, "db-pool-size", 0, "PostgreSQL connections of the file tasks (default: concurrency + 1)")
		},
		Register: registerFileTasks,
	})
}

func registerFileTasks(ctx context.Context, reg *worker.Registry, env taskEnv) (func(), error) {
	if !fileTaskFlags.enabled {
		return nil, nil
	}
	log := env.Logger.With("component", "file_tasks")
	master := env.Getenv("MASTER_KEY")
	if master == "" {
		master = tasks.DefaultMasterKey
		log.Warn("MASTER_KEY is not set: using the Omicsomics development default (as the backend does); set MASTER_KEY in production")
	}
	keys, err := tasks.NewMasterKeyring(master)
	if err != nil {
		return nil, err
	}
	ocfg := objectStoreConfigFromEnv(env.Getenv)
	ocfg.Logger = log
	objects, err := openObjectStore(ctx, ocfg)
	if err != nil {
		return nil, err
	}
	dbURL := env.Getenv("DATABASE_URL")
	if dbURL == "" {
		dbURL = defaultDatabaseURL
	}
	if _, err := postgres.ParseDatabaseURL(dbURL); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	files := &lazyFiles{cfg: postgres.Config{URL: dbURL, Logger: log, MaxConns: int32(fileTaskFlags.dbConns)}}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if _, err := files.store(pingCtx); err != nil {
		log.Warn("database not reachable yet; the file tasks will connect on first use (and retry)", "err", err)
	}
	cancel()
	tmp := fileTaskFlags.tmpDir
	if tmp == "" {
		tmp = env.Getenv("OMICS_WORKER_TMPDIR")
	}
	cfg := tasks.Config{Files: files, Objects: objects, Keys: keys, Logger: log, TempDir: tmp,
		RetryBase: seconds(fileTaskFlags.retry), IsTransient: storageIsTransient}
	if err := tasks.Register(reg, cfg); err != nil {
		return nil, err
	}
	log.Info("file tasks registered", "tasks", []string{tasks.ProcessFileTask, tasks.ProcessLargeFileTask},
		"object_storage", mask.URL(cmpOr(ocfg.Endpoint, defaultObjectEndpoint)), "bucket", cmpOr(ocfg.Bucket, defaultObjectBucket))
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

// lazyFiles opens the PostgreSQL pool on first use, so that the worker can
// start before the database (compose start order, outages); a failed open
// is a transient error and the task is retried.
type lazyFiles struct {
	cfg postgres.Config
	mu  sync.Mutex
	s   *postgres.Store
}

func (l *lazyFiles) store(ctx context.Context) (*postgres.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := postgres.OpenConfig(ctx, l.cfg)
	if err != nil {
		if !postgres.IsTransient(err) && !errors.Is(err, postgres.ErrUnsupportedURL) {
			// Connect failures are transient by nature here.
			err = &connectError{err}
		}
		return nil, err
	}
	l.s = s
	return s, nil
}

type connectError struct{ err error }

func (e *connectError) Error() string   { return e.err.Error() }
func (e *connectError) Unwrap() error   { return e.err }
func (e *connectError) Timeout() bool   { return true } // net.Error: classified as transient
func (e *connectError) Temporary() bool { return true } // net.Error

func (l *lazyFiles) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		l.s.Close()
		l.s = nil
	}
}

func (l *lazyFiles) GetFile(ctx context.Context, id int64) (*storage.File, error) {
	s, err := l.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.GetFile(ctx, id)
}

func (l *lazyFiles) SaveProcessed(ctx context.Context, raw *storage.File, nf storage.NewFile, patch []storage.MetadataField) (int64, error) {
	s, err := l.store(ctx)
	if err != nil {
		return 0, err
	}
	return s.SaveProcessed(ctx, raw, nf, patch)
}

func (l *lazyFiles) MarkFailed(ctx context.Context, rawID int64, patch []storage.MetadataField) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.MarkFailed(ctx, rawID, patch)
}

func (l *lazyFiles) RecordPendingObject(ctx context.Context, rawID int64, taskID, key string) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.RecordPendingObject(ctx, rawID, taskID, key)
}

func (l *lazyFiles) DoomPendingObject(ctx context.Context, key string) (bool, error) {
	s, err := l.store(ctx)
	if err != nil {
		return false, err
	}
	return s.DoomPendingObject(ctx, key)
}

func (l *lazyFiles) ForgetPendingObject(ctx context.Context, key string) error {
	s, err := l.store(ctx)
	if err != nil {
		return err
	}
	return s.ForgetPendingObject(ctx, key)
}

func (l *lazyFiles) PendingObjects(ctx context.Context, rawID int64, limit int) ([]storage.PendingObject, error) {
	s, err := l.store(ctx)
	if err != nil {
		return nil, err
	}
	return s.PendingObjects(ctx, rawID, limit)
}

var _ storage.FileStore = (*lazyFiles)(nil)
