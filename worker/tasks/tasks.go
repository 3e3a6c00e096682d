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
// The package declares what it needs from storage as small interfaces
// (FileStore, ObjectStore, Keyring); storage/postgres, storage/s3,
// storage/local and MasterKeyring satisfy them.
package tasks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/omicsomics/omics-worker/storage/postgres"
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

// FileStore reads and writes data_files rows (storage/postgres.Store).
type FileStore interface {
	// GetFile returns a row; an error wrapping postgres.ErrNotFound when
	// it does not exist.
	GetFile(ctx context.Context, id int64) (*postgres.File, error)
	// SaveProcessed inserts the processed row and links it from the raw
	// row in one transaction; postgres.ErrAlreadyProcessed (with the
	// existing id) when the raw row already links one.
	SaveProcessed(ctx context.Context, raw *postgres.File, processed postgres.NewFile, rawMetadataPatch map[string]any) (int64, error)
	// MarkFailed merges processing_info (and omics_type when not empty)
	// into the raw row's metadata; postgres.ErrAlreadyProcessed when the
	// raw row already links a processed row.
	MarkFailed(ctx context.Context, rawID int64, processingInfo any, omicsType string) error
	// The durable record of uploads not yet committed (see
	// storage/postgres/pending.go): recorded before the upload, consumed
	// by the commit (NewFile.Pending), settled by Doom + delete + Forget.
	RecordPendingObject(ctx context.Context, rawID int64, taskID, key string) error
	DoomPendingObject(ctx context.Context, key string) (bool, error)
	ForgetPendingObject(ctx context.Context, key string) error
	PendingObjects(ctx context.Context, rawID int64, limit int) ([]postgres.PendingObject, error)
}

// ObjectStore holds the encrypted blobs (storage/s3.Store,
// storage/local.Store). Its method set is storage.ObjectStore's.
type ObjectStore interface {
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	Delete(ctx context.Context, key string) error
	Exists(ctx context.Context, key string) (bool, error)
}

// Keyring returns the AES-256 key of a user (see MasterKeyring).
type Keyring interface {
	UserKey(userID int64) ([]byte, error)
}

// Config configures the tasks. Files, Objects and Keys are required; the
// zero value of every other field means the default noted.
type Config struct {
	Files   FileStore
	Objects ObjectStore
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
	// RetryDelay returns the countdown of the n-th retry (n = 0, 1, 2) of
	// a transient database/storage error (default 2 s, 4 s, 8 s).
	RetryDelay func(n int) time.Duration
	// MaxRetries bounds retries of transient errors (default 3, like
	// Celery's default max_retries; negative = never retry).
	MaxRetries int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// IsTransient classifies infrastructure errors as worth a retry
	// (default: storage.IsTransient).
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
	opts := worker.TaskOptions{
		Params: []string{"raw_file_id", "sample_id"},
		// App configuration, not task attributes: the worker's flags
		// override them.
		AppTimeLimit:     TimeLimit,
		AppSoftTimeLimit: SoftTimeLimit,
		MaxRetries:       p.maxRetries(),
		FairnessKey:      UserKey(cfg.Files),
	}
	if err := reg.Register(ProcessFileTask, p.Handler(Tuning{}), opts); err != nil {
		return err
	}
	return reg.Register(ProcessLargeFileTask, p.Handler(LargeFileTuning), opts)
}

// UserKey returns the fairness key function of the file tasks (omics-worker
// worker --max-per-user): "user:<uploaded_by_id>" of the raw row, looked up
// once per raw file id and cached (the uploader of a row never changes).
// A missing row or a bad raw_file_id has no key (the task fails anyway).
func UserKey(files FileStore) worker.KeyFunc {
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
			if errors.Is(err, postgres.ErrNotFound) {
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
