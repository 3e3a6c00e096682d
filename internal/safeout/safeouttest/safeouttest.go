// Package safeouttest holds the file-system helpers shared by the tests of
// internal/safeout and of `convert -o` (cmd/omics-worker), which check
// that an output path and its directory are left as they should be.
//
// Only _test.go files import this package.
package safeouttest

import (
	"os"
	"path/filepath"
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

// CreateMode is the mode os.Create gives a new file here (0o666 less the
// umask).
func CreateMode(t testing.TB) os.FileMode {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "ref"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
