// Package storagetest holds the checks every storage.ObjectStore backend
// must pass, shared by the tests of package storage and of the backends
// (storage/local, storage/s3).
//
// Only _test.go files import this package.
package storagetest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/storage"
)

// ReadObject gets key from st and reads it whole: the content and the
// size Get reported. An error of Get fails the test.
func ReadObject(t testing.TB, st storage.ObjectStore, key string) (string, int64) {
	t.Helper()
	rc, size, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return string(b), size
}

// RejectsKeys checks that Put, Get, Delete and Exists of st each refuse
// every one of keys with an error wrapping storage.ErrInvalidKey.
func RejectsKeys(t testing.TB, st storage.ObjectStore, keys []string) {
	t.Helper()
	ctx := context.Background()
	for _, key := range keys {
		if err := st.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q): %v", key, err)
		}
		if _, _, err := st.Get(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if err := st.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q): %v", key, err)
		}
		if _, err := st.Exists(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Exists(%q): %v", key, err)
		}
	}
}
