package processing_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
)

// failAfter is a destination that accepts n bytes, then fails with err
// (a full disk under the processed document).
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) <= f.n {
		f.n -= len(p)
		return len(p), nil
	}
	k := f.n
	f.n = 0
	return k, f.err
}

// TestOutputFaultsAreNotContentErrors: a spool or destination that fails
// (disk full, missing temporary directory) is Convert's error matching
// ErrOutput and the cause, never Result.Err (which would mark the user's
// file as unconvertible), for every converter.
func TestOutputFaultsAreNotContentErrors(t *testing.T) {
	faults := []struct {
		name   string
		cause  error
		modify func(o *processing.Options) *failAfter
	}{
		{"spool directory missing", fs.ErrNotExist, func(o *processing.Options) *failAfter {
			o.TempDir = filepath.Join(t.TempDir(), "gone")
			o.SpoolMemory = -1
			return nil
		}},
		{"document writer full", syscall.ENOSPC, func(o *processing.Options) *failAfter {
			return &failAfter{n: 10, err: &os.PathError{Op: "write", Path: "/tmp/x", Err: syscall.ENOSPC}}
		}},
		{"streamed document writer full", syscall.ENOSPC, func(o *processing.Options) *failAfter {
			o.Stream = true
			return &failAfter{n: 0, err: syscall.ENOSPC}
		}},
		{"document writer I/O error at the end", syscall.EIO, func(o *processing.Options) *failAfter {
			return &failAfter{n: 1 << 30, err: syscall.EIO} // set below
		}},
	}
	for _, c := range goldenCases {
		_, _, ok := runCase(t, c)
		if !ok.Converted || ok.Records == 0 {
			continue
		}
		for _, fault := range faults {
			t.Run(c.input+"/"+fault.name, func(t *testing.T) {
				content, err := os.ReadFile(filepath.Join("testdata", "inputs", c.input))
				if err != nil {
					t.Fatal(err)
				}
				opts := c.options()
				opts.Size = int64(len(content))
				w := fault.modify(&opts)
				if w != nil && w.n == 1<<30 {
					w.n = int(ok.BytesOut) - 1 // fail on the last write
				}
				var dst interface{ Write([]byte) (int, error) } = &bytes.Buffer{}
				if w != nil {
					dst = w
				}
				res, err := processing.Convert(context.Background(), bytes.NewReader(content), dst, opts)
				if !errors.Is(err, processing.ErrOutput) || !errors.Is(err, fault.cause) {
					t.Fatalf("Convert error = %v, want ErrOutput wrapping %v (Result.Err %v)", err, fault.cause, res.Err)
				}
				var oe *processing.OutputError
				if !errors.As(err, &oe) || oe.Op == "" {
					t.Errorf("error %v is not an *OutputError with its operation", err)
				}
				if res.Err != nil || res.Reason != "" {
					t.Errorf("output fault recorded as a content error: Err %v, Reason %q", res.Err, res.Reason)
				}
			})
		}
	}
}
