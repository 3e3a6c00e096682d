// Package storage is where rows and bytes of the Omicsomics platform live.
// Sub-packages:
//
//   - storage/envelope: per-user envelope encryption compatible with the
//     backend's crypto.py (HKDF-SHA256 + AES-256-GCM), single-shot and
//     streaming.
//   - storage/postgres: the data_files table (pgx); implements FileStore.
//   - storage/s3: objects in S3/MinIO (minio-go); implements ObjectStore.
//   - storage/local: objects in a directory (file:///path endpoints);
//     implements ObjectStore.
//
// This package declares the contracts the backends implement (litestream's
// direction: the backends import this package, never the reverse): the
// file-row contract FileStore with its types (File, NewFile,
// MetadataField, PendingObject) and errors (ErrNotFound,
// ErrAlreadyProcessed, ErrObjectSettled), the object-store contract
// ObjectStore with its errors (ErrObjectNotFound, ErrBucketNotFound,
// ErrInvalidKey, ErrOutsideBucket, ErrAccessDenied) and key rule
// (ValidateKey). On top of them: object keys as the upload path makes
// them, and streaming encrypt-and-upload / download-and-decrypt helpers.
// Choosing a backend (OBJECT_STORAGE_ENDPOINT's scheme, DATABASE_URL) is
// wiring, done by the binary (cmd/omics-worker).
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/storage/envelope"
)

// ObjectStore is the object-store contract: the encrypted blobs, one
// bucket. storage/s3.Store and storage/local.Store implement it (every
// implementation validates keys with ValidateKey first); the file task and
// the helpers below consume it.
type ObjectStore interface {
	// Get opens an object and returns its size; an error wrapping
	// ErrObjectNotFound when it is missing (also ErrBucketNotFound when
	// the bucket is).
	Get(ctx context.Context, key string) (io.ReadCloser, int64, error)
	// Put stores r (size bytes, or -1 when unknown) under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) error
	// Delete removes an object; a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// Exists reports whether an object exists.
	Exists(ctx context.Context, key string) (bool, error)
}

// ObjectKey returns a fresh key as the upload path makes them:
// sandbox/<project>/<user>/<uuid4 as 32 lower-case hex>.enc.
func ObjectKey(projectID, userID int64) string {
	return fmt.Sprintf("sandbox/%d/%d/%s.enc", projectID, userID, pyfmt.NewUUID4().Hex())
}

// Uploaded describes a stored plaintext.
type Uploaded struct {
	ObjectKey string
	Size      int64  // plaintext bytes
	Checksum  string // lower-case hex SHA-256 of the plaintext
}

// ErrUploadLeftover is matched by an error of UploadEncrypted whose
// clean-up failed: an object may be left under the key, and the caller
// must delete it later. Without it, nothing is stored under the key.
var ErrUploadLeftover = errors.New("storage: the failed upload's object could not be deleted")

// UploadEncrypted streams the plaintext r, encrypted with userKey (see
// envelope.DeriveUserKey), to objectKey, computing size and checksum of the
// plaintext on the way (spec §6.2). size is the plaintext length or -1.
// Memory use is bounded by the encryption buffer plus what the store
// buffers (S3: one multipart part). On failure the object is deleted and
// nothing is returned; if that deletion fails too, the error also matches
// ErrUploadLeftover.
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
		if derr := store.Delete(context.WithoutCancel(ctx), objectKey); derr != nil {
			perr = fmt.Errorf("%w (%w: %w)", perr, ErrUploadLeftover, derr)
		}
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
