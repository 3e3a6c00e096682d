// Package objerr holds what every object store of this module shares, so
// that storage, storage/s3 and storage/local can agree on one sentinel
// without importing each other.
package objerr

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotFound is returned when an object (or its bucket) does not exist.
var ErrNotFound = errors.New("object not found")

// ErrInvalidKey is returned for object keys a store refuses.
var ErrInvalidKey = errors.New("invalid object key")

// MaxKeyLen is the length of data_files.object_key (varchar(1024)).
const MaxKeyLen = 1024

// ValidateKey accepts relative slash-separated keys without empty, "." or
// ".." segments, backslashes or NUL bytes (no path traversal).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	case strings.ContainsAny(key, "\\\x00"):
		return fmt.Errorf("%w: %q contains a backslash or NUL", ErrInvalidKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" segment", ErrInvalidKey, key)
		}
	}
	return nil
}
