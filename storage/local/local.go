// Package local is an object store over a directory, for development, the
// demo and single-host installs: object KEY of bucket B lives at
// <root>/B/KEY. Writes are atomic (temporary file in the same directory,
// fsync, rename), so a reader never sees a partial object.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/storage"
)

// The store's errors are the object-store contract's (storage/errors.go):
// storage.ErrObjectNotFound, storage.ErrInvalidKey, storage.ErrOutsideBucket.
var _ storage.ObjectStore = (*Store)(nil)

// Config configures a Store.
type Config struct {
	// Root is the directory holding one sub-directory per bucket.
	Root string
	// Bucket is the bucket directory name (default "omicsomics").
	Bucket string
}

// Store keeps objects as files.
type Store struct {
	dir string // Root/Bucket
}

// RootFromEndpoint returns the directory of a file:///path endpoint.
func RootFromEndpoint(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "file" {
		return "", fmt.Errorf("local: endpoint %q is not a file:///path URL", mask.URL(endpoint))
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("local: endpoint %q names a host; use file:///absolute/path", mask.URL(endpoint))
	}
	if u.Path == "" {
		return "", fmt.Errorf("local: endpoint %q has no path", mask.URL(endpoint))
	}
	return filepath.FromSlash(u.Path), nil
}

// New returns a store rooted at cfg.Root, creating the bucket directory.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Root == "" {
		return nil, errors.New("local: empty root directory")
	}
	bucket := cfg.Bucket
	if bucket == "" {
		bucket = "omicsomics"
	}
	if bucket == "." || bucket == ".." || strings.ContainsAny(bucket, "/\\\x00") {
		return nil, fmt.Errorf("local: invalid bucket name %q", bucket)
	}
	dir := filepath.Join(cfg.Root, bucket)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Dir returns the bucket directory.
func (s *Store) Dir() string { return s.dir }

// open validates key and opens the bucket directory as an os.Root: every
// access through it stays inside the bucket, symbolic links included (a
// link that leads out of the bucket, or an absolute one, is refused with
// storage.ErrOutsideBucket). The caller closes the root.
func (s *Store) open(key string) (*os.Root, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return root, nil
}

var (
	escapeOnce sync.Once
	errEscape  error // os.Root's (unexported) "path escapes from parent"
)

// escapeErr returns the error value os.Root uses for a path that leaves
// the root, learned once by asking a root for "..".
func escapeErr() error {
	escapeOnce.Do(func() {
		root, err := os.OpenRoot(os.TempDir())
		if err != nil {
			return
		}
		defer root.Close()
		_, err = root.Lstat("..")
		var pe *fs.PathError
		if errors.As(err, &pe) {
			errEscape = pe.Err
		}
	})
	return errEscape
}

// fsErr wraps an error of an os.Root operation on key.
func fsErr(op, key string, err error) error {
	if e := escapeErr(); e != nil && errors.Is(err, e) {
		return fmt.Errorf("local: %s %s: %w (a symbolic link in the bucket)", op, key, storage.ErrOutsideBucket)
	}
	return fmt.Errorf("local: %s %s: %w", op, key, err)
}

// Get opens an object and returns its size.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	root, err := s.open(key)
	if err != nil {
		return nil, 0, err
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO planted in the bucket must not hang the open (no
	// effect on regular files).
	f, err := root.OpenFile(key, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", storage.ErrObjectNotFound, key)
	}
	if err != nil {
		return nil, 0, fsErr("open", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("local: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s", storage.ErrObjectNotFound, key)
	}
	return &ctxFile{ctx: ctx, File: f}, st.Size(), nil
}

// ctxFile stops reading once the context is done.
type ctxFile struct {
	ctx context.Context
	*os.File
}

func (f *ctxFile) Read(p []byte) (int, error) {
	if err := f.ctx.Err(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

// Put stores r at key atomically. size is the expected length or -1; a
// different length is an error and leaves nothing behind. The content type
// is not recorded (a directory has nowhere to keep it).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	root, err := s.open(key)
	if err != nil {
		return err
	}
	defer root.Close()
	dir := path.Dir(key)
	if err := root.MkdirAll(dir, 0o750); err != nil {
		return fsErr("mkdir", dir, err)
	}
	tmpName, tmp, err := createTemp(root, dir)
	if err != nil {
		return fsErr("create", dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			_ = root.Remove(tmpName)
		}
	}()
	n, err := io.Copy(tmp, &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fmt.Errorf("local: write %s: %w", key, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("local: write %s: got %d bytes, expected %d", key, n, size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := root.Rename(tmpName, key); err != nil {
		return fsErr("rename", key, err)
	}
	ok = true
	return nil
}

// createTemp creates a new 0600 file dir/.tmp-<random> inside root.
func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		name := path.Join(dir, ".tmp-"+hex.EncodeToString(b[:]))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return name, f, err
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Delete removes an object; deleting a missing object is not an error (as
// S3 DeleteObject). A directory is not an object and is left alone; a
// symbolic link is removed itself, never its target.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := s.open(key)
	if err != nil {
		return err
	}
	defer root.Close()
	st, err := root.Lstat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fsErr("stat", key, err)
	}
	if st.IsDir() {
		return nil
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsErr("delete", key, err)
	}
	return nil
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	root, err := s.open(key)
	if err != nil {
		return false, err
	}
	defer root.Close()
	st, err := root.Stat(key)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fsErr("stat", key, err)
	}
	return st.Mode().IsRegular(), nil
}
