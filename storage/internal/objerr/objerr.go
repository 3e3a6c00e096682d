// Package objerr holds what every object store of this module shares, so
// that storage, storage/s3 and storage/local can agree on one sentinel and
// one set of key rules without importing each other.
package objerr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is returned when an object (or its bucket) does not exist.
var ErrNotFound = errors.New("object not found")

// ErrBucketNotFound is returned when the bucket itself does not exist: a
// fault of the worker's configuration, not of the file. Errors that carry
// it also match ErrNotFound.
var ErrBucketNotFound = errors.New("object storage bucket does not exist")

// BucketNotFoundError names the missing bucket and the key that was asked
// for. It matches ErrBucketNotFound and ErrNotFound with errors.Is.
type BucketNotFoundError struct {
	Bucket, Key string
}

func (e *BucketNotFoundError) Error() string {
	return fmt.Sprintf("bucket %q does not exist (check OBJECT_STORAGE_BUCKET); object %s not found", e.Bucket, e.Key)
}

// Is reports whether target is ErrBucketNotFound or ErrNotFound.
func (e *BucketNotFoundError) Is(target error) bool {
	return target == ErrBucketNotFound || target == ErrNotFound
}

// ErrInvalidKey is returned for object keys a store refuses.
var ErrInvalidKey = errors.New("invalid object key")

// MaxKeyLen is the length of data_files.object_key (varchar(1024)), and
// S3's own limit in bytes.
const MaxKeyLen = 1024

// ValidateKey is the one key rule of every object store (local, S3 and
// any later one), checked before the key reaches the file system or the
// wire. It accepts relative, slash-separated UTF-8 keys of at most
// MaxKeyLen bytes and refuses, with ErrInvalidKey:
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
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidKey, quote(key))
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: %s is absolute", ErrInvalidKey, quote(key))
	case strings.Contains(key, "\\"):
		return fmt.Errorf("%w: %s contains a backslash", ErrInvalidKey, quote(key))
	}
	for _, r := range key {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return fmt.Errorf("%w: %s contains control character %U", ErrInvalidKey, quote(key), r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: %s has an empty segment", ErrInvalidKey, quote(key))
		case ".", "..":
			return fmt.Errorf("%w: %s has a %q segment", ErrInvalidKey, quote(key), seg)
		}
	}
	return nil
}

// quote returns key Go-quoted (control bytes escaped), cut to 100 bytes
// so that a hostile key cannot flood a log line.
func quote(key string) string {
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
