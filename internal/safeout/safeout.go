// Package safeout opens an output path so that a failed write never
// destroys what was there. A regular file (new, pre-existing, or the
// target of a symlink) is written to a temporary file in the same
// directory and renamed over the path only on success, so a failure
// leaves the path exactly as it was. Anything else (a character device
// such as /dev/null, a FIFO, a socket) is written straight through and is
// never created, removed, truncated or replaced. It serves `omics-worker
// convert -o` (issue 9 #1: `-o /dev/null` used to delete /dev/null).
package safeout

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrIsDir is returned by Open for a path naming a directory.
var ErrIsDir = errors.New("is a directory")

// File is an output opened by Open; write to it, then call Finish once.
type File struct {
	f *os.File
	// final is the regular file the temporary file replaces on commit
	// (the symlink's target when the path is a symlink); "" when writing
	// straight through.
	final string
	// tmp is the temporary file this package created; "" when writing
	// straight through.
	tmp string
}

// Open prepares path for writing; see the package comment.
func Open(path string) (*File, error) {
	target := path
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createTemp(path, newFileMode())
	case err != nil:
		return nil, err
	case st.Mode()&fs.ModeSymlink != 0:
		// Write to what the link points at; the link itself stays.
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("output %s: %w", path, err)
		}
		if st, err = os.Stat(target); err != nil {
			return nil, err
		}
	}
	switch {
	case st.IsDir():
		return nil, fmt.Errorf("output %s: %w", path, ErrIsDir)
	case st.Mode().IsRegular():
		return createTemp(target, st.Mode().Perm())
	}
	// Device, FIFO, socket: write through; never created, never removed.
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return &File{f: f}, nil
}

// createTemp creates the temporary file beside final with mode perm.
func createTemp(final string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(final)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".omics-tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, final: final, tmp: f.Name()}, nil
}

// Write writes to the temporary file, or straight through.
func (o *File) Write(p []byte) (int, error) { return o.f.Write(p) }

// Streamable reports whether a partial document may be written as it is
// produced: only into the temporary file, which a failure removes. A
// device or FIFO should get the whole document or nothing.
func (o *File) Streamable() bool { return o.tmp != "" }

// Finish closes the output. With ok it makes the document visible (syncs
// and renames the temporary file over the final path); without it
// removes the temporary file this package created and nothing else.
func (o *File) Finish(ok bool) error {
	if o.tmp == "" {
		return o.f.Close()
	}
	var err error
	if ok {
		err = o.f.Sync()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if ok && err == nil {
		err = os.Rename(o.tmp, o.final)
	}
	if !ok || err != nil {
		os.Remove(o.tmp)
	}
	return err
}

// newFileMode is the mode os.Create would give a new file: 0666 less the
// process umask (read from /proc; 022 when unknown).
func newFileMode() fs.FileMode {
	umask := fs.FileMode(0o022)
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umask = fs.FileMode(n) & 0o777
				}
				break
			}
		}
	}
	return 0o666 &^ umask
}
