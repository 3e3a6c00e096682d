// Package tasks implements the Omicsomics Celery tasks on top of the
// worker runtime:
//
//	app.tasks.file_tasks.process_file_async(raw_file_id, sample_id=None)
//	app.tasks.file_tasks.process_large_file_async(raw_file_id, sample_id=None)
//
// Both run the same pipeline (a correct version of the Python task, spec
// processing.md §7.4): load the raw data_files row, stream its encrypted
// object through decryption into the converter, spool the UnifiedData
// document to a temporary file, encrypt it streaming into the object store
// and link it to the raw row in one database transaction. Progress is
// reported with the exact states and messages the FastAPI status endpoint
// expects (see States).
//
// The rows and objects are reached through the storage package's
// contracts (storage.FileStore, storage.ObjectStore, with their types and
// errors), which storage/postgres, storage/s3 and storage/local implement;
// the task declares only Keyring, satisfied by MasterKeyring. Transient
// infrastructure errors are retried by the runtime (worker.Transient and
// TaskOptions.AutoRetry), with the countdowns of Config.RetryBase.
package tasks

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/worker"
)

// Celery task names.
const (
	ProcessFileTask      = "app.tasks.file_tasks.process_file_async"
	ProcessLargeFileTask = "app.tasks.file_tasks.process_large_file_async"
)

// Time limits of the Omicsomics Celery app (celery_app.py: app
// configuration task_time_limit / task_soft_time_limit). As in Celery, the
// worker's --time-limit / --soft-time-limit override them and a message's
// timelimit header wins over both (worker.TaskOptions.AppTimeLimit).
const (
	TimeLimit     = 3600 * time.Second
	SoftTimeLimit = 3300 * time.Second
)

// Keyring returns the AES-256 key of a user (see MasterKeyring).
type Keyring interface {
	UserKey(userID int64) ([]byte, error)
}

// Config configures the tasks. Files, Objects, Keys and IsTransient are
// required; the zero value of every other field means the default noted.
type Config struct {
	Files   storage.FileStore
	Objects storage.ObjectStore
	Keys    Keyring
	// Logger receives task logs (default: discard).
	Logger *slog.Logger
	// TempDir holds the converted document while it is uploaded, and the
	// converter's record spool ("" = os.TempDir()).
	TempDir string
	// ProgressInterval is the minimum time between two fine-grained
	// PROGRESS updates during conversion (default 500 ms; negative = no
	// fine-grained updates).
	ProgressInterval time.Duration
	// RetryBase is the countdown of the first retry of a transient
	// database/storage error, doubled for each further one (default 2 s:
	// 2 s, 4 s, 8 s), without jitter. The runtime retries
	// (TaskOptions.AutoRetry).
	RetryBase time.Duration
	// MaxRetries bounds retries of transient errors (default 3, like
	// Celery's default max_retries; negative = never retry).
	MaxRetries int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// IsTransient classifies the errors of Files and Objects as worth a
	// retry (an outage) or not (a definite answer). Each backend knows its
	// own errors (postgres.IsTransient, s3.IsTransient); the binary wires
	// the classifier of the backends it chose.
	IsTransient func(error) bool
	// StaleAge is the age after which a pending upload of another task
	// is presumed dead and settled (deleted) by a run of the same raw
	// file or by Sweep (default TimeLimit: no run outlives its hard
	// limit, and a commit after it is refused).
	StaleAge time.Duration
}

// Register adds both tasks to reg with the Python signature
// (raw_file_id, sample_id=None) and the Omicsomics app's time limits as
// app defaults.
func Register(reg *worker.Registry, cfg Config) error {
	p, err := New(cfg)
	if err != nil {
		return err
	}
	opts := p.TaskOptions()
	if err := reg.Register(ProcessFileTask, p.Handler(Tuning{}), opts); err != nil {
		return err
	}
	return reg.Register(ProcessLargeFileTask, p.Handler(LargeFileTuning), opts)
}

// TaskOptions returns the runtime options of both tasks: the Python
// signature, the app's time limits (app configuration, not task
// attributes: the worker's flags override them), the fairness key, and the
// automatic retry of transient errors: countdowns RetryBase×2^n without
// jitter (2 s, 4 s, 8 s by default), at most MaxRetries, then FAILURE with
// the last error.
func (p *Processor) TaskOptions() worker.TaskOptions {
	return worker.TaskOptions{
		Params:           []string{"raw_file_id", "sample_id"},
		AppTimeLimit:     TimeLimit,
		AppSoftTimeLimit: SoftTimeLimit,
		MaxRetries:       p.maxRetries(),
		AutoRetry: worker.AutoRetry{
			Disabled: p.cfg.MaxRetries < 0,
			Base:     p.cfg.RetryBase,
			Max:      p.cfg.RetryBase << 10,
			NoJitter: true,
		},
		FairnessKey: UserKey(p.cfg.Files),
	}
}

// UserKey returns the fairness key function of the file tasks (omics-worker
// worker --max-per-user): "user:<uploaded_by_id>" of the raw row, looked up
// once per raw file id and cached (the uploader of a row never changes).
// A missing row or a bad raw_file_id has no key (the task fails anyway).
func UserKey(files storage.FileStore) worker.KeyFunc {
	var mu sync.Mutex
	cache := map[int64]int64{}
	return func(ctx context.Context, t *worker.Task) (string, error) {
		id, err := t.IntArg("raw_file_id")
		if err != nil {
			return "", nil
		}
		mu.Lock()
		user, ok := cache[id]
		mu.Unlock()
		if !ok {
			f, err := files.GetFile(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			user = f.UploadedByID
			mu.Lock()
			if len(cache) >= 100_000 {
				clear(cache)
			}
			cache[id] = user
			mu.Unlock()
		}
		return "user:" + strconv.FormatInt(user, 10), nil
	}
}
