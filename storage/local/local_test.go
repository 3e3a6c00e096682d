package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := New(context.Background(), Config{Root: root, Bucket: "b"})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestLayoutAndRoundTrip(t *testing.T) {
	s, root := newStore(t)
	ctx := context.Background()
	key := "sandbox/1/2/0123456789abcdef0123456789abcdef.enc"
	if err := s.Put(ctx, key, strings.NewReader("blob"), 4, "application/json"); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(filepath.Join(root, "b", "sandbox", "1", "2", "0123456789abcdef0123456789abcdef.enc"))
	if err != nil || string(onDisk) != "blob" {
		t.Fatalf("object not at /root/B/KEY: %q %v", onDisk, err)
	}
	rc, size, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "blob" || size != 4 {
		t.Fatalf("Get = %q, %d", b, size)
	}
	// Overwrite is atomic and complete.
	if err := s.Put(ctx, key, strings.NewReader("second"), -1, ""); err != nil {
		t.Fatal(err)
	}
	rc, size, _ = s.Get(ctx, key)
	b, _ = io.ReadAll(rc)
	rc.Close()
	if string(b) != "second" || size != 6 {
		t.Fatalf("after overwrite: %q, %d", b, size)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Join(root, "b", "sandbox", "1", "2"))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(entries))
	}
}

func TestPathTraversalRejected(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, key := range []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "a/", "x\x00y", strings.Repeat("k", 1025)} {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1, ""); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Put(%q): %v", key, err)
		}
		if _, _, err := s.Get(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%q): %v", key, err)
		}
		if _, err := s.Exists(ctx, key); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Exists(%q): %v", key, err)
		}
	}
	for _, bucket := range []string{"..", "a/b"} {
		if _, err := New(ctx, Config{Root: t.TempDir(), Bucket: bucket}); err == nil {
			t.Errorf("bucket %q accepted", bucket)
		}
	}
}

func TestFailedPutLeavesNothing(t *testing.T) {
	s, root := newStore(t)
	ctx := context.Background()
	boom := errors.New("boom")
	tests := []struct {
		name string
		r    io.Reader
		size int64
	}{
		{"reader error", io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(boom)), -1},
		{"short", strings.NewReader("abc"), 10},
		{"long", strings.NewReader("abcdef"), 3},
	}
	for _, tc := range tests {
		if err := s.Put(ctx, "k/obj", tc.r, tc.size, ""); err == nil {
			t.Errorf("%s: Put succeeded", tc.name)
		}
		if ok, _ := s.Exists(ctx, "k/obj"); ok {
			t.Errorf("%s: object exists", tc.name)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, "b", "k"))
	if len(entries) != 0 {
		t.Errorf("leftover files: %v", entries)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "k/obj", bytes.NewReader(make([]byte, 10)), 10, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Put: %v", err)
	}
}

func TestNotFoundAndDelete(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, _, err := s.Get(ctx, "no/such"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if err := s.Put(ctx, "dir/obj", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "dir"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Get of a directory: %v", err)
	}
	if ok, err := s.Exists(ctx, "dir"); ok || err != nil {
		t.Errorf("Exists of a directory: %v %v", ok, err)
	}
	if err := s.Delete(ctx, "dir/obj"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "dir/obj"); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if ok, _ := s.Exists(ctx, "dir/obj"); ok {
		t.Error("exists after Delete")
	}
}

func TestRootFromEndpoint(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"file:///var/lib/omics", "/var/lib/omics", true},
		{"file://localhost/data", "/data", true},
		{"file://host/data", "", false},
		{"file://", "", false},
		{"http://x", "", false},
	}
	for _, tc := range tests {
		got, err := RootFromEndpoint(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("RootFromEndpoint(%q) = %q, %v", tc.in, got, err)
		}
	}
}
