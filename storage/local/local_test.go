package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/storagetest"
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
	if b, size := storagetest.ReadObject(t, s, key); b != "blob" || size != 4 {
		t.Fatalf("Get = %q, %d", b, size)
	}
	// Overwrite is atomic and complete.
	if err := s.Put(ctx, key, strings.NewReader("second"), -1, ""); err != nil {
		t.Fatal(err)
	}
	if b, size := storagetest.ReadObject(t, s, key); b != "second" || size != 6 {
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
	storagetest.RejectsKeys(t, s, []string{"", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\b", "a/", "x\x00y", strings.Repeat("k", 1025)})
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
	if _, _, err := s.Get(ctx, "no/such"); !errors.Is(err, storage.ErrObjectNotFound) {
		t.Errorf("Get missing: %v", err)
	}
	if err := s.Put(ctx, "dir/obj", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, "dir"); !errors.Is(err, storage.ErrObjectNotFound) {
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

// TestSymlinksOutOfBucketRefused: a symbolic link inside the bucket that
// leads out of it is never followed, for any operation; a link that stays
// inside is.
func TestSymlinksOutOfBucketRefused(t *testing.T) {
	s, root := newStore(t)
	ctx := context.Background()
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(outside, 0o750); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret.enc")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	bucket := s.Dir()
	mustLink := func(target, name string) {
		t.Helper()
		if err := os.Symlink(target, filepath.Join(bucket, name)); err != nil {
			t.Fatal(err)
		}
	}
	mustLink("../outside", "reldir")       // directory link, relative, escapes
	mustLink(outside, "absdir")            // directory link, absolute
	mustLink("../outside/secret.enc", "f") // file link, escapes
	if err := os.MkdirAll(filepath.Join(bucket, "in"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bucket, "in", "ok.enc"), []byte("inside"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustLink("in", "inlink") // stays inside: followed

	for _, key := range []string{"reldir/secret.enc", "absdir/secret.enc", "f"} {
		if _, _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrOutsideBucket) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if _, err := s.Exists(ctx, key); !errors.Is(err, storage.ErrOutsideBucket) {
			t.Errorf("Exists(%q): %v", key, err)
		}
	}
	for _, key := range []string{"reldir/new.enc", "absdir/new.enc", "reldir/secret.enc", "reldir/sub/new.enc"} {
		if err := s.Put(ctx, key, strings.NewReader("evil"), 4, ""); !errors.Is(err, storage.ErrOutsideBucket) {
			t.Errorf("Put(%q): %v", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, storage.ErrOutsideBucket) {
			t.Errorf("Delete(%q): %v", key, err)
		}
	}
	// Put over a file link replaces the link; Delete removes the link.
	// Neither writes or removes the target.
	if err := s.Put(ctx, "f", strings.NewReader("new"), 3, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("target outside the bucket changed: %q %v", b, err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("outside directory holds %d entries, want 1", len(entries))
	}
	// A link that stays inside the bucket works.
	if b, size := storagetest.ReadObject(t, s, "inlink/ok.enc"); b != "inside" || size != 6 {
		t.Errorf("Get through an inside link = %q %d", b, size)
	}
}

// TestSpecialFilesAreNotObjects: a directory or FIFO in the bucket is not
// an object, and opening a FIFO does not hang.
func TestSpecialFilesAreNotObjects(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := syscall.Mkfifo(filepath.Join(s.Dir(), "fifo"), 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"fifo", "dir"} {
		if _, _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrObjectNotFound) {
			t.Errorf("Get(%q): %v", key, err)
		}
		if ok, err := s.Exists(ctx, key); ok || err != nil {
			t.Errorf("Exists(%q): %v %v", key, ok, err)
		}
	}
	if err := s.Delete(ctx, "dir"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "dir")); err != nil {
		t.Errorf("Delete removed a directory: %v", err)
	}
}
