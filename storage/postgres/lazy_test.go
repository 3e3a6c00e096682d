package postgres

import (
	"context"
	"errors"
	"testing"
)

// TestLazyOpenFailureIsTransient: a database that is down makes every
// method fail with a transient error (the task is retried), and an
// unsupported URL does not.
func TestLazyOpenFailureIsTransient(t *testing.T) {
	ctx := context.Background()
	l := NewLazy(Config{URL: "postgresql://postgres@127.0.0.1:1/omics?connect_timeout=2"})
	defer l.Close()
	if _, err := l.GetFile(ctx, 1); err == nil || !IsTransient(err) {
		t.Errorf("GetFile with the database down: %v, want a transient error", err)
	}
	if err := l.MarkFailed(ctx, 1, nil); err == nil || !IsTransient(err) {
		t.Errorf("MarkFailed with the database down: %v, want a transient error", err)
	}
	bad := NewLazy(Config{URL: "mysql://x/y"})
	if _, err := bad.Store(ctx); !errors.Is(err, ErrUnsupportedURL) || IsTransient(err) {
		t.Errorf("unsupported URL: %v, want ErrUnsupportedURL, not transient", err)
	}
}
