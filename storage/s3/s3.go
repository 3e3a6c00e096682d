// Package s3 is the object store over S3/MinIO (minio-go), used the way the
// Omicsomics backend uses boto3: one bucket, path-style addressing, the
// bucket checked (HeadBucket) and created when missing before uploading.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/storage"
)

// The store's errors are the object-store contract's (storage/errors.go):
// storage.ErrObjectNotFound, storage.ErrBucketNotFound (a
// *storage.BucketNotFoundError naming the bucket), storage.ErrInvalidKey
// (keys storage.ValidateKey refuses, before any request is sent) and
// storage.ErrAccessDenied (refused credentials or bucket policy; not
// transient, and its text never holds the secret key).
var _ storage.ObjectStore = (*Store)(nil)

// Config configures a Store. Zero values mean the defaults noted.
type Config struct {
	// Endpoint is OBJECT_STORAGE_ENDPOINT: http://host:port or
	// https://host:port (the scheme decides TLS). Required.
	Endpoint string
	// AccessKey, SecretKey are OBJECT_STORAGE_ACCESS_KEY/_SECRET_KEY.
	AccessKey, SecretKey string
	// Bucket is OBJECT_STORAGE_BUCKET (default "omicsomics").
	Bucket string
	// Region (default "us-east-1", what boto3 signs with for MinIO).
	Region string
	// PartSize is the multipart part size and so the upload buffer per
	// Put in flight when the size is unknown or large (default 16 MiB).
	PartSize uint64
	// MaxRetries bounds minio-go's own retries of a failed request
	// (default: minio-go's, 10).
	MaxRetries int
	// Logger receives debug records (default: discard).
	Logger *slog.Logger
}

// Store is an S3 bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	partSize uint64
	log      *slog.Logger

	mu          sync.Mutex
	bucketReady bool
	// unfinished holds keys whose failed Put may have left an incomplete
	// multipart upload that could not be aborted then (server down); the
	// next Put retries the abort.
	unfinished map[string]struct{}
}

// New returns a store for cfg. It does not contact the server; the bucket
// is checked/created before the first Put.
func New(ctx context.Context, cfg Config) (*Store, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("s3: endpoint %q must be http://host[:port] or https://host[:port]", mask.URL(cfg.Endpoint))
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return nil, fmt.Errorf("s3: endpoint %q must not have a path", mask.URL(cfg.Endpoint))
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	client, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	bucket := cfg.Bucket
	if bucket == "" {
		bucket = "omicsomics"
	}
	part := cfg.PartSize
	if part == 0 {
		part = 16 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{client: client, bucket: bucket, partSize: part, log: log}, nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound":
		return true
	}
	return false
}

func isAccessDenied(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"XAdminUserNotFound": // VersityGW's code for an unknown access key
		return true
	}
	return false
}

// explainNotFound turns a 404 into the right error. A HEAD response has
// no body, so minio-go calls every 404 NoSuchKey, whether the object, the
// bucket or (on some gateways) the access key is unknown; one listing
// request (which has a body) tells them apart. Only the not-found path
// pays for it.
func (s *Store) explainNotFound(ctx context.Context, op, key string, err error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The first item is an object or the listing's error.
	o, ok := <-s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key, MaxKeys: 1})
	if ok && o.Err != nil && (isNotFound(o.Err) || isAccessDenied(o.Err)) {
		err = o.Err
	}
	return s.wrap(op, key, err)
}

// wrap gives a store error its sentinel: storage.ErrObjectNotFound (naming the
// bucket when that is what is missing), storage.ErrAccessDenied, or the S3 error.
func (s *Store) wrap(op, key string, err error) error {
	if isNotFound(err) {
		if minio.ToErrorResponse(err).Code == minio.NoSuchBucket {
			return &storage.BucketNotFoundError{Bucket: s.bucket, Key: key}
		}
		return fmt.Errorf("%w: %s", storage.ErrObjectNotFound, key)
	}
	if isAccessDenied(err) {
		return fmt.Errorf("s3: %s %s in bucket %q: %w: %w", op, key, s.bucket, storage.ErrAccessDenied, mask.Error(err))
	}
	return fmt.Errorf("s3: %s %s: %w", op, key, mask.Error(err))
}

// ensureBucket checks the bucket and creates it when missing, once per
// Store (a failure is retried by the next Put).
func (s *Store) ensureBucket(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bucketReady {
		return nil
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		if isAccessDenied(err) {
			return fmt.Errorf("s3: head bucket %s: %w: %w", s.bucket, storage.ErrAccessDenied, err)
		}
		return fmt.Errorf("s3: head bucket %s: %w", s.bucket, err)
	}
	if !ok {
		err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
		if code := minio.ToErrorResponse(err).Code; err != nil && code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
			if isAccessDenied(err) {
				return fmt.Errorf("s3: head bucket %s gave not found, create bucket refused: %w: %w", s.bucket, storage.ErrAccessDenied, err)
			}
			return fmt.Errorf("s3: create bucket %s: %w", s.bucket, err)
		}
		s.log.InfoContext(ctx, "created bucket", "bucket", s.bucket)
	}
	s.bucketReady = true
	return nil
}

// Get opens an object and returns its size.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, int64, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, 0, err
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s.wrap("get", key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		if isNotFound(err) {
			return nil, 0, s.explainNotFound(ctx, "get", key, err)
		}
		return nil, 0, s.wrap("get", key, err)
	}
	return obj, st.Size, nil
}

// Put uploads r to key with the given content type. size is the length or
// -1 when unknown (multipart upload in PartSize parts).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if err := s.ensureBucket(ctx); err != nil {
		return err
	}
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	s.abortUnfinished(ctx)
	_, err := s.client.PutObject(ctx, s.bucket, key, r, size, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    s.partSize,
	})
	if err != nil {
		// minio-go aborts a failed multipart upload itself, but not when
		// the server is unreachable at that moment: make sure, now or on
		// a later Put, that no incomplete upload stays behind.
		s.abortIncomplete(ctx, key)
		switch {
		case minio.ToErrorResponse(err).Code == minio.NoSuchBucket:
			// Deleted since ensureBucket: create it again next time.
			s.mu.Lock()
			s.bucketReady = false
			s.mu.Unlock()
		case isAccessDenied(err):
			return fmt.Errorf("s3: put %s in bucket %q: %w: %w", key, s.bucket, storage.ErrAccessDenied, err)
		}
		return fmt.Errorf("s3: put %s: %w", key, err)
	}
	return nil
}

// abortTimeout bounds the clean-up of an incomplete multipart upload;
// maxUnfinished bounds the keys remembered for a later retry.
const (
	abortTimeout  = 10 * time.Second
	maxUnfinished = 1024
)

// abortIncomplete aborts every incomplete multipart upload of key. When
// the server cannot be reached it remembers key for abortUnfinished and
// returns false; a definite refusal (e.g. credentials not allowed to list
// multipart uploads) is logged and forgotten: the bucket's lifecycle rule
// is then the clean-up.
func (s *Store) abortIncomplete(ctx context.Context, key string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	err := s.client.RemoveIncompleteUpload(ctx, s.bucket, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil || isNotFound(err) {
		delete(s.unfinished, key)
		return true
	}
	if !IsTransient(err) && !errors.Is(err, context.DeadlineExceeded) {
		delete(s.unfinished, key)
		s.log.DebugContext(ctx, "could not abort incomplete multipart uploads", "key", key, "error", err)
		return true
	}
	if s.unfinished == nil {
		s.unfinished = map[string]struct{}{}
	}
	if len(s.unfinished) < maxUnfinished {
		s.unfinished[key] = struct{}{}
	}
	s.log.WarnContext(ctx, "could not abort an incomplete multipart upload; will retry", "key", key, "error", err)
	return false
}

// abortUnfinished retries the aborts that failed before (best effort),
// stopping at the first that still cannot reach the server.
func (s *Store) abortUnfinished(ctx context.Context) {
	s.mu.Lock()
	keys := make([]string, 0, len(s.unfinished))
	for k := range s.unfinished {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	for _, k := range keys {
		if !s.abortIncomplete(ctx, k) {
			return
		}
	}
}

// Delete removes an object and any incomplete multipart upload of its
// key; deleting a missing object is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return s.wrap("delete", key, err)
	}
	s.abortIncomplete(ctx, key)
	return nil
}

// Exists reports whether an object exists.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	if err := storage.ValidateKey(key); err != nil {
		return false, err
	}
	_, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if isNotFound(err) {
		// A missing object or bucket is "no"; an unknown access key
		// (which some gateways answer with 404) is an error.
		if err := s.explainNotFound(ctx, "stat", key, err); errors.Is(err, storage.ErrAccessDenied) {
			return false, err
		}
		return false, nil
	}
	if err != nil {
		return false, s.wrap("stat", key, err)
	}
	return true, nil
}

// IsTransient reports whether err looks like a storage outage worth a
// retry (network errors, 5xx, throttling) rather than a definite answer.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, storage.ErrObjectNotFound) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode >= 500 || resp.StatusCode == 429 {
		return true
	}
	switch resp.Code {
	case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable":
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}
