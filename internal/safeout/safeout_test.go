package safeout

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/omicsomics/omics-worker/internal/safeout/safeouttest"
)

const (
	precious = "precious data this package did not create\n"
	doc      = "{\"new\": \"document\"}\n"
)

// TestRegularOutputs: for a new path, an existing file and a symlink to
// an existing file, a committed write replaces the content (mode kept,
// link kept) and an aborted one leaves everything as it was; no
// temporary file survives either way.
func TestRegularOutputs(t *testing.T) {
	type kind struct {
		name  string
		setup func(t *testing.T, dir string) (path, content string) // "" content = path must not exist
		want  func(dir string) (file string, perm os.FileMode)      // the file holding the document after commit
	}
	kinds := []kind{
		{"new file",
			func(t *testing.T, dir string) (string, string) { return filepath.Join(dir, "new.json"), "" },
			func(dir string) (string, os.FileMode) { return filepath.Join(dir, "new.json"), newFileMode() }},
		{"existing file",
			func(t *testing.T, dir string) (string, string) {
				p := filepath.Join(dir, "out.json")
				safeouttest.WriteFile(t, p, precious, 0o600)
				return p, precious
			},
			func(dir string) (string, os.FileMode) { return filepath.Join(dir, "out.json"), 0o600 }},
		{"symlink",
			func(t *testing.T, dir string) (string, string) {
				safeouttest.WriteFile(t, filepath.Join(dir, "target.json"), precious, 0o640)
				p := filepath.Join(dir, "link.json")
				if err := os.Symlink("target.json", p); err != nil {
					t.Fatal(err)
				}
				return p, precious
			},
			func(dir string) (string, os.FileMode) { return filepath.Join(dir, "target.json"), 0o640 }},
	}
	for _, k := range kinds {
		for _, ok := range []bool{false, true} {
			name := k.name + "/abort"
			if ok {
				name = k.name + "/commit"
			}
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				path, before := k.setup(t, dir)
				entries := safeouttest.DirNames(t, dir)
				o, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				if !o.Streamable() {
					t.Error("a regular output is not streamable")
				}
				if _, err := io.WriteString(o, doc); err != nil {
					t.Fatal(err)
				}
				if err := o.Finish(ok); err != nil {
					t.Fatal(err)
				}
				file, perm := k.want(dir)
				b, err := os.ReadFile(file)
				switch {
				case ok && (err != nil || string(b) != doc):
					t.Errorf("after commit %s holds %q (%v), want the document", file, b, err)
				case !ok && before == "" && !errors.Is(err, os.ErrNotExist):
					t.Errorf("abort left %s: %q %v", file, b, err)
				case !ok && before != "" && string(b) != before:
					t.Errorf("abort changed %s to %q", file, b)
				}
				if st, err := os.Stat(file); err == nil && st.Mode().Perm() != perm {
					t.Errorf("mode %v, want %v", st.Mode().Perm(), perm)
				}
				if st, err := os.Lstat(path); k.name == "symlink" && (err != nil || st.Mode()&os.ModeSymlink == 0) {
					t.Errorf("symlink replaced: %v %v", st, err)
				}
				if ok && before == "" {
					entries = append(entries, filepath.Base(path))
				}
				if got := safeouttest.DirNames(t, dir); !slices.Equal(got, entries) {
					t.Errorf("directory holds %q, want %q (temporary file left?)", got, entries)
				}
			})
		}
	}
}

// TestFIFOWrittenThrough: a FIFO is opened as it is, not streamable, and
// stays a FIFO after an aborted write (issue 9 #1).
func TestFIFOWrittenThrough(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		f, err := os.Open(p)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(f)
		f.Close()
		got <- b
	}()
	o, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if o.Streamable() {
		t.Error("a FIFO is streamable")
	}
	if _, err := io.WriteString(o, doc); err != nil {
		t.Fatal(err)
	}
	if err := o.Finish(false); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != doc {
		t.Errorf("reader got %q", b)
	}
	if st, err := os.Lstat(p); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("FIFO replaced or gone: %v %v", st, err)
	}
	if n := safeouttest.DirNames(t, dir); !slices.Equal(n, []string{"pipe"}) {
		t.Errorf("directory holds %q", n)
	}
}

// TestDeviceNeverRemoved: /dev/null (or a copy made with mknod when
// root) survives an aborted write.
func TestDeviceNeverRemoved(t *testing.T) {
	p := filepath.Join(t.TempDir(), "null")
	if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
		p = os.DevNull
	}
	o, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if o.Streamable() {
		t.Error("a device is streamable")
	}
	if _, err := io.WriteString(o, doc); err != nil {
		t.Fatal(err)
	}
	if err := o.Finish(false); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(p); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("device replaced or gone: %v %v", st, err)
	}
}

// TestDirectoryRefused: a directory (or a symlink to one) is ErrIsDir and
// nothing is created.
func TestDirectoryRefused(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{sub, filepath.Join(dir, "link")} {
		if _, err := Open(p); !errors.Is(err, ErrIsDir) {
			t.Errorf("Open(%s): %v, want ErrIsDir", p, err)
		}
	}
	if n := safeouttest.DirNames(t, dir); !slices.Equal(n, []string{"link", "sub"}) {
		t.Errorf("directory holds %q", n)
	}
	if n := safeouttest.DirNames(t, sub); len(n) != 0 {
		t.Errorf("sub holds %q", n)
	}
}

// TestNewFileMode: a new output gets the mode os.Create would give.
func TestNewFileMode(t *testing.T) {
	if got, want := newFileMode(), safeouttest.CreateMode(t); got != want {
		t.Errorf("newFileMode() = %v, os.Create gives %v", got, want)
	}
}
