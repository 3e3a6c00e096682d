package postgres

import (
	"context"
	"errors"
	"sync"

	"github.com/omicsomics/omics-worker/storage"
)

// Lazy is a Store opened on first use, so that a worker can start before
// the database (compose start order, outages): a failed open is a
// transient error (IsTransient) and the task that met it is retried. It
// has the file-row methods of *Store; Close closes the pool if one was
// opened.
type Lazy struct {
	cfg Config
	mu  sync.Mutex
	s   *Store
}

// NewLazy returns a Lazy store for cfg; nothing is opened yet.
func NewLazy(cfg Config) *Lazy { return &Lazy{cfg: cfg} }

// Store returns the open store, opening it now if needed.
func (l *Lazy) Store(ctx context.Context) (*Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := OpenConfig(ctx, l.cfg)
	if err != nil {
		if !IsTransient(err) && !errors.Is(err, ErrUnsupportedURL) {
			// Connect failures are transient by nature here.
			err = &connectError{err}
		}
		return nil, err
	}
	l.s = s
	return s, nil
}

// connectError marks a failed open as transient: it is a net.Error
// whose Timeout is true, which IsTransient (and storage.IsTransient)
// classify as retryable.
type connectError struct{ err error }

func (e *connectError) Error() string   { return e.err.Error() }
func (e *connectError) Unwrap() error   { return e.err }
func (e *connectError) Timeout() bool   { return true } // net.Error
func (e *connectError) Temporary() bool { return true } // net.Error

// Close closes the pool if it was opened; a later call opens a new one.
func (l *Lazy) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		l.s.Close()
		l.s = nil
	}
}

// GetFile is Store.GetFile.
func (l *Lazy) GetFile(ctx context.Context, id int64) (*storage.File, error) {
	s, err := l.Store(ctx)
	if err != nil {
		return nil, err
	}
	return s.GetFile(ctx, id)
}

// SaveProcessed is Store.SaveProcessed.
func (l *Lazy) SaveProcessed(ctx context.Context, raw *storage.File, nf storage.NewFile, patch []storage.MetadataField) (int64, error) {
	s, err := l.Store(ctx)
	if err != nil {
		return 0, err
	}
	return s.SaveProcessed(ctx, raw, nf, patch)
}

// MarkFailed is Store.MarkFailed.
func (l *Lazy) MarkFailed(ctx context.Context, rawID int64, patch []storage.MetadataField) error {
	s, err := l.Store(ctx)
	if err != nil {
		return err
	}
	return s.MarkFailed(ctx, rawID, patch)
}

// RecordPendingObject is Store.RecordPendingObject.
func (l *Lazy) RecordPendingObject(ctx context.Context, rawID int64, taskID, key string) error {
	s, err := l.Store(ctx)
	if err != nil {
		return err
	}
	return s.RecordPendingObject(ctx, rawID, taskID, key)
}

// DoomPendingObject is Store.DoomPendingObject.
func (l *Lazy) DoomPendingObject(ctx context.Context, key string) (bool, error) {
	s, err := l.Store(ctx)
	if err != nil {
		return false, err
	}
	return s.DoomPendingObject(ctx, key)
}

// ForgetPendingObject is Store.ForgetPendingObject.
func (l *Lazy) ForgetPendingObject(ctx context.Context, key string) error {
	s, err := l.Store(ctx)
	if err != nil {
		return err
	}
	return s.ForgetPendingObject(ctx, key)
}

// PendingObjects is Store.PendingObjects.
func (l *Lazy) PendingObjects(ctx context.Context, rawID int64, limit int) ([]storage.PendingObject, error) {
	s, err := l.Store(ctx)
	if err != nil {
		return nil, err
	}
	return s.PendingObjects(ctx, rawID, limit)
}

var _ storage.FileStore = (*Lazy)(nil)
