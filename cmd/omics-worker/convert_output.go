package main

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

// convertOutput is where `convert -o PATH` writes. A regular file (new, or
// pre-existing, or the target of a symlink) is written to a temporary file
// in the same directory and renamed over PATH only when the conversion
// succeeds, so a failure leaves PATH exactly as it was. Anything else (a
// character device such as /dev/null, a FIFO, a socket) is written
// straight through and is never removed, truncated or replaced.
type convertOutput struct {
	f *os.File
	// final is the regular file the temporary file replaces on commit
	// (the symlink's target when PATH is a symlink); "" when writing
	// straight through.
	final string
	// tmp is the temporary file this command created; "" when writing
	// straight through.
	tmp string
}

// errOutputIsDir is returned for -o naming a directory.
var errOutputIsDir = errors.New("is a directory")

// openConvertOutput prepares path for writing; see convertOutput.
func openConvertOutput(path string) (*convertOutput, error) {
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
		return nil, fmt.Errorf("output %s: %w", path, errOutputIsDir)
	case st.Mode().IsRegular():
		return createTemp(target, st.Mode().Perm())
	}
	// Device, FIFO, socket: write through; never created, never removed.
	f, err := os.OpenFile(target, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	return &convertOutput{f: f}, nil
}

// createTemp creates the temporary file beside final with mode perm.
func createTemp(final string, perm fs.FileMode) (*convertOutput, error) {
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
	return &convertOutput{f: f, final: final, tmp: f.Name()}, nil
}

// streamable reports whether a partial document may be written as the
// conversion goes: only into the temporary file, which a failure removes.
func (o *convertOutput) streamable() bool { return o.tmp != "" }

// finish closes the output. With ok it makes the document visible (syncs
// and renames the temporary file over the final path); without it removes
// the temporary file this command created and nothing else.
func (o *convertOutput) finish(ok bool) error {
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
