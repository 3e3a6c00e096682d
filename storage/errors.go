package storage

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors of the file-row contract (FileStore). Backends return them
// (wrapped, with the row's id) and callers test them with errors.Is.
var (
	// ErrNotFound is returned when a data_files row does not exist.
	ErrNotFound = errors.New("data file not found")
	// ErrAlreadyProcessed is returned by SaveProcessed and MarkFailed when
	// the raw row already links an existing processed row (a duplicate
	// delivery of the same task); SaveProcessed also returns that row's id.
	ErrAlreadyProcessed = errors.New("raw file already processed")
	// ErrObjectSettled is returned by SaveProcessed (NewFile.Pending) when
	// the object's pending record was settled (doomed or deleted) before
	// the commit: the object is being or has been deleted and must not be
	// linked.
	ErrObjectSettled = errors.New("uploaded object was settled before the commit")
)

// Errors of the object-store contract (ObjectStore).
var (
	// ErrObjectNotFound is returned by Get for a missing object (or
	// bucket).
	ErrObjectNotFound = errors.New("object not found")
	// ErrBucketNotFound: the bucket itself is missing, a fault of the
	// worker's configuration, not of the file. Errors that carry it also
	// match ErrObjectNotFound (see BucketNotFoundError).
	ErrBucketNotFound = errors.New("object storage bucket does not exist")
	// ErrInvalidKey is returned, before any I/O, for object keys that
	// ValidateKey refuses.
	ErrInvalidKey = errors.New("invalid object key")
	// ErrOutsideBucket is returned when a path inside the bucket is a
	// symbolic link (or goes through one) that leads out of the bucket
	// (storage/local).
	ErrOutsideBucket = errors.New("path leads outside the bucket")
	// ErrAccessDenied is returned when the server refuses the credentials
	// (unknown access key, wrong secret) or the bucket's policy refuses
	// them (storage/s3). It is not transient: retrying will not fix a
	// configuration error. The error text never contains the secret key.
	ErrAccessDenied = errors.New("access denied by object storage (check OBJECT_STORAGE_ACCESS_KEY, OBJECT_STORAGE_SECRET_KEY and the bucket policy)")
)

// BucketNotFoundError names the missing bucket and the key that was asked
// for. It matches ErrBucketNotFound and ErrObjectNotFound with errors.Is.
type BucketNotFoundError struct {
	Bucket, Key string
}

func (e *BucketNotFoundError) Error() string {
	return fmt.Sprintf("bucket %q does not exist (check OBJECT_STORAGE_BUCKET); object %s not found", e.Bucket, e.Key)
}

// Is reports whether target is ErrBucketNotFound or ErrObjectNotFound.
func (e *BucketNotFoundError) Is(target error) bool {
	return target == ErrBucketNotFound || target == ErrObjectNotFound
}

// MaxKeyLen is the length of data_files.object_key (varchar(1024)), and
// S3's own limit in bytes.
const MaxKeyLen = 1024

// ValidateKey is the one key rule of every object store (local, S3 and
// any later one), checked before the key reaches the file system or the
// wire; a new ObjectStore must call it too. It accepts relative,
// slash-separated UTF-8 keys of at most MaxKeyLen bytes and refuses, with
// an error wrapping ErrInvalidKey:
//   - an empty key, an absolute key ("/etc/passwd") and empty segments
//     ("a//b", "a/");
//   - "." and ".." segments ("../otherbucket/x", "a/../../etc/passwd"): a
//     gateway or proxy that normalises paths would otherwise resolve them
//     outside the bucket with the worker's credentials;
//   - backslashes (a path separator on some back-ends);
//   - NUL and every other control character (C0, DEL, C1), and invalid
//     UTF-8 (S3 keys are UTF-8; such bytes only confuse logs and
//     back-ends).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidKey, quoteKey(key))
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: %s is absolute", ErrInvalidKey, quoteKey(key))
	case strings.Contains(key, "\\"):
		return fmt.Errorf("%w: %s contains a backslash", ErrInvalidKey, quoteKey(key))
	}
	for _, r := range key {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalidKey, quoteKey(key), r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %s has an empty segment", ErrInvalidKey, quoteKey(key))
		case ".", "..":
			return fmt.Errorf("%w: %s has a %q segment", ErrInvalidKey, quoteKey(key), seg)
		}
	}
	return nil
}

// quoteKey returns key Go-quoted (control bytes escaped), cut to 100
// bytes so that a hostile key cannot flood a log line.
func quoteKey(key string) string {
	const max = 100
	if len(key) <= max {
		return strconv.Quote(key)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return strconv.Quote(key[:cut]) + "..."
}
