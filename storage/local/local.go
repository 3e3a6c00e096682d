// Package local is an object store over a directory, for development, the
// demo and single-host installs: object KEY of bucket B lives at
// <root>/B/KEY. Writes are atomic (temporary file in the same directory,
// fsync, rename), so a reader never sees a partial object.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/storage/internal/objerr"
)

// ErrObjectNotFound is returned by Get for a missing object. It is the
// same value as storage.ErrObjectNotFound and s3.ErrObjectNotFound.
var ErrObjectNotFound = objerr.ErrNotFound

// ErrInvalidKey is returned for keys that would escape the bucket.
var ErrInvalidKey = objerr.ErrInvalidKey

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

func (s *Store) path(key string) (string, error) {
	if err := objerr.ValidateKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// Get opens an object and returns its size.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	p, err := s.path(key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%w: %s", ErrObjectNotFound, key)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("local: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("local: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, fmt.Errorf("%w: %s", ErrObjectNotFound, key)
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
	p, err := s.path(key)
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
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
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	ok = true
	return nil
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
// S3 DeleteObject).
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p, err := s.path(key)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("local: %w", err)
	}
	return !st.IsDir(), nil
}
