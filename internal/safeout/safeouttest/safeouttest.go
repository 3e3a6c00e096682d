// Package safeouttest holds the file-system helpers shared by the tests of
// internal/safeout and of `convert -o` (cmd/omics-worker), which check
// that an output path and its directory are left as they should be.
//
// Only _test.go files import this package.
package safeouttest

import (
	"os"
	"testing"
)

// DirNames lists the names in dir, sorted.
func DirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// WriteFile writes s to path with mode perm, whatever the umask.
func WriteFile(t testing.TB, path, s string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}
