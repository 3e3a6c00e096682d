// Package storage is where rows and bytes of the Omicsomics platform live.
// Sub-packages:
//
//   - storage/envelope: per-user envelope encryption compatible with the
//     backend's crypto.py (HKDF-SHA256 + AES-256-GCM), single-shot and
//     streaming.
//   - storage/postgres: the data_files table (pgx).
//   - storage/s3: objects in S3/MinIO (minio-go).
//   - storage/local: objects in a directory (file:///path endpoints).
//
// This package ties them together: object keys as the upload path makes
// them, choosing an object store from OBJECT_STORAGE_ENDPOINT, and
// streaming encrypt-and-upload / download-and-decrypt helpers.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strings"

	"github.com/omicsomics/omics-worker/internal/mask"
	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/storage/envelope"
	"github.com/omicsomics/omics-worker/storage/internal/objerr"
	"github.com/omicsomics/omics-worker/storage/local"
	"github.com/omicsomics/omics-worker/storage/postgres"
	"github.com/omicsomics/omics-worker/storage/s3"
)

var (
	// ErrObjectNotFound is returned by every object store for a missing
	// object (the same value as s3.ErrObjectNotFound and
	// local.ErrObjectNotFound).
	ErrObjectNotFound = objerr.ErrNotFound
	// ErrInvalidKey is returned for object keys a store refuses.
	ErrInvalidKey = objerr.ErrInvalidKey
	// ErrBucketNotFound: the bucket itself is missing (a configuration
	// fault). Such errors also match ErrObjectNotFound.
	ErrBucketNotFound = objerr.ErrBucketNotFound
	// ErrOutsideBucket is returned by the local store for a path that a
	// symbolic link inside the bucket leads out of it.
	ErrOutsideBucket = local.ErrOutsideBucket
)

// ValidateKey is the key rule every object store applies before the key
// reaches a file system or the wire (see objerr.ValidateKey): relative,
// slash-separated UTF-8, at most 1024 bytes, no empty, "." or ".."
// segments, no backslash, no control character. It returns an error
// wrapping ErrInvalidKey. A new ObjectStore must call it too.
func ValidateKey(key string) error { return objerr.ValidateKey(key) }

// ObjectStore is the method set shared by *s3.Store and *local.Store.
type ObjectStore interface {
	// Get opens an object and returns its size; ErrObjectNotFound when missing.
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Put stores r (size bytes, or -1 when unknown) under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Exists reports whether an object exists.
	Exists(ctx context.Context, key string) (bool, error)
}

var (
	_ ObjectStore = (*s3.Store)(nil)
	_ ObjectStore = (*local.Store)(nil)
)

// ObjectKey returns a fresh key as the upload path makes them:
// sandbox/<project>/<user>/<uuid4 as 32 lower-case hex>.enc.
func ObjectKey(projectID, userID int64) string {
	return fmt.Sprintf("sandbox/%d/%d/%s.enc", projectID, userID, pyfmt.NewUUID4().Hex())
}

// Defaults of the Python settings (backend/app/settings.py).
const (
	DefaultEndpoint  = "http://localhost:9002"
	DefaultAccessKey = "minioadmin"
	DefaultSecretKey = "minioadmin123"
	DefaultBucket    = "omicsomics"
)

// ObjectStoreConfig selects and configures an object store. Zero values
// mean the Python settings' defaults.
type ObjectStoreConfig struct {
	// Endpoint is OBJECT_STORAGE_ENDPOINT: http(s)://host:port for S3/MinIO,
	// file:///path for a directory (object KEY of bucket B at /path/B/KEY).
	Endpoint string
	// AccessKey, SecretKey: OBJECT_STORAGE_ACCESS_KEY / _SECRET_KEY (S3 only).
	AccessKey, SecretKey string
	// Bucket: OBJECT_STORAGE_BUCKET (default omicsomics).
	Bucket string
	// Region: S3 signing region (default us-east-1).
	Region string
	// Logger receives debug records (default: discard).
	Logger *slog.Logger
}

// ObjectStoreConfigFromEnv reads the OBJECT_STORAGE_* variables with
// getenv (os.Getenv in production); unset ones take the defaults.
func ObjectStoreConfigFromEnv(getenv func(string) string) ObjectStoreConfig {
	return ObjectStoreConfig{
		Endpoint:  getenv("OBJECT_STORAGE_ENDPOINT"),
		AccessKey: getenv("OBJECT_STORAGE_ACCESS_KEY"),
		SecretKey: getenv("OBJECT_STORAGE_SECRET_KEY"),
		Bucket:    getenv("OBJECT_STORAGE_BUCKET"),
		Region:    getenv("OBJECT_STORAGE_REGION"),
	}
}

// OpenObjectStore returns the store the endpoint's scheme selects:
// file:// -> storage/local, http:// or https:// -> storage/s3.
func OpenObjectStore(ctx context.Context, cfg ObjectStoreConfig) (ObjectStore, error) {
	endpoint := cfg.Endpoint
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	bucket := cfg.Bucket
	if bucket == "" {
		bucket = DefaultBucket
	}
	scheme, _, _ := strings.Cut(endpoint, "://")
	switch strings.ToLower(scheme) {
	case "file":
		root, err := local.RootFromEndpoint(endpoint)
		if err != nil {
			return nil, err
		}
		return local.New(ctx, local.Config{Root: root, Bucket: bucket})
	case "http", "https":
		ak, sk := cfg.AccessKey, cfg.SecretKey
		if ak == "" {
			ak = DefaultAccessKey
		}
		if sk == "" {
			sk = DefaultSecretKey
		}
		return s3.New(ctx, s3.Config{Endpoint: endpoint, AccessKey: ak, SecretKey: sk, Bucket: bucket, Region: cfg.Region, Logger: cfg.Logger})
	}
	return nil, fmt.Errorf("storage: OBJECT_STORAGE_ENDPOINT %q: want http://, https:// or file:///", mask.URL(endpoint))
}

// IsTransient reports whether a storage/postgres or storage/s3 error is
// worth retrying with backoff.
func IsTransient(err error) bool {
	return postgres.IsTransient(err) || s3.IsTransient(err)
}

// Uploaded describes a stored plaintext.
type Uploaded struct {
	ObjectKey string
	Size      int64  // plaintext bytes
	Checksum  string // lower-case hex SHA-256 of the plaintext
}

// UploadEncrypted streams the plaintext r, encrypted with userKey (see
// envelope.DeriveUserKey), to objectKey, computing size and checksum of the
// plaintext on the way (spec §6.2). size is the plaintext length or -1.
// Memory use is bounded by the encryption buffer plus what the store
// buffers (S3: one multipart part). On failure the object is deleted
// (best effort) and nothing is returned.
func UploadEncrypted(ctx context.Context, store ObjectStore, userKey []byte, objectKey string, r io.Reader, size int64, contentType string) (Uploaded, error) {
	pr, pw := io.Pipe()
	ew, err := envelope.NewEncryptWriter(userKey, pw)
	if err != nil {
		return Uploaded{}, err
	}
	sum := sha256.New()
	var n int64
	var copyErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		var err error
		n, err = io.Copy(io.MultiWriter(ew, sum), r)
		if err == nil && size >= 0 && n != size {
			err = fmt.Errorf("storage: plaintext is %d bytes, expected %d", n, size)
		}
		if err == nil {
			err = ew.Close()
		}
		copyErr = err
		pw.CloseWithError(err)
	}()
	blobSize := int64(-1)
	if size >= 0 {
		blobSize = envelope.BlobSize(size)
	}
	perr := store.Put(ctx, objectKey, pr, blobSize, contentType)
	pr.CloseWithError(errors.New("storage: upload ended")) // unblock the copier if Put stopped early
	<-done
	if perr == nil && copyErr != nil {
		perr = copyErr // the store took a short object without noticing
	}
	if perr != nil {
		_ = store.Delete(context.WithoutCancel(ctx), objectKey)
		return Uploaded{}, perr
	}
	return Uploaded{ObjectKey: objectKey, Size: n, Checksum: hexSum(sum)}, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// DecryptedObject reads the plaintext of a stored blob. Its data is
// authenticated only when Read returns io.EOF (see envelope.DecryptReader).
type DecryptedObject struct {
	*envelope.DecryptReader
	body io.Closer
	// BlobSize is the stored (encrypted) size.
	BlobSize int64
}

// Close closes the underlying object body.
func (d *DecryptedObject) Close() error { return d.body.Close() }

// OpenDecrypted opens objectKey and returns a streaming decrypting reader.
func OpenDecrypted(ctx context.Context, store ObjectStore, userKey []byte, objectKey string) (*DecryptedObject, error) {
	body, size, err := store.Get(ctx, objectKey)
	if err != nil {
		return nil, err
	}
	dr, err := envelope.NewDecryptReader(userKey, body, size)
	if err != nil {
		body.Close()
		return nil, err
	}
	return &DecryptedObject{DecryptReader: dr, body: body, BlobSize: size}, nil
}
