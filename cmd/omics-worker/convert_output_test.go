package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/omicsomics/omics-worker/internal/safeout/safeouttest"
)

const (
	convertBadVCF  = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\tabc\t.\tA\tT\t.\t.\t.\n"
	convertGoodVCF = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t100\trs1\tA\tT\t50\tPASS\tDP=10\nchr2\t200\t.\tG\tC\t.\t.\t.\n"
	precious       = "precious data that convert did not create\n"
)

var docTimes = regexp.MustCompile(`"(created|updated)_at": "[^"]*"`)

// sameDoc compares two documents but their timestamps.
func sameDoc(a, b string) bool {
	return docTimes.ReplaceAllString(a, "T") == docTimes.ReplaceAllString(b, "T")
}

// TestConvertOutputNeverDestroys runs `convert -o` against every kind of
// output path with a failing and a valid input (issue 9 #1: `-o /dev/null`
// deleted /dev/null on failure), end to end; internal/safeout has the
// unit tests of the output file itself.
func TestConvertOutputNeverDestroys(t *testing.T) {
	// The reference document, written to stdout.
	refDir := t.TempDir()
	good := filepath.Join(refDir, "good.vcf")
	bad := filepath.Join(refDir, "bad.vcf")
	for p, s := range map[string]string{good: convertGoodVCF, bad: convertBadVCF} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var ref, errb bytes.Buffer
	if rc := runConvert(context.Background(), []string{good, "-q"}, &ref, &errb); rc != 0 || !json.Valid(ref.Bytes()) {
		t.Fatalf("reference conversion: rc %d, stderr %s", rc, errb.String())
	}

	type target struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the -o path
		// check verifies the path after the run; got is what a FIFO
		// reader received.
		check func(t *testing.T, path string, ok bool, got []byte)
	}
	regular := func(t *testing.T, path string, ok bool, want string, perm os.FileMode) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatalf("output: %v", err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != perm {
			t.Errorf("output mode %v, want regular %v", st.Mode(), perm)
		}
		b, _ := os.ReadFile(path)
		if ok && json.Valid(b) && sameDoc(string(b), ref.String()) {
			return
		}
		if ok || string(b) != want {
			t.Errorf("output holds %d bytes %.60q, want %d bytes %.60q", len(b), b, len(want), want)
		}
	}
	targets := []target{
		{
			name: "char device",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "null")
				if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
					t.Skipf("mknod needs root: %v", err)
				}
				return p
			},
			check: func(t *testing.T, path string, ok bool, _ []byte) {
				st, err := os.Lstat(path)
				if err != nil {
					t.Fatalf("device gone: %v", err)
				}
				if st.Mode()&os.ModeCharDevice == 0 || st.Sys().(*syscall.Stat_t).Rdev != 1<<8|3 {
					t.Errorf("device replaced: mode %v", st.Mode())
				}
			},
		},
		{
			name: "fifo",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "pipe")
				if err := syscall.Mkfifo(p, 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			},
			check: func(t *testing.T, path string, ok bool, got []byte) {
				st, err := os.Lstat(path)
				if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
					t.Errorf("FIFO replaced or gone: %v %v", st, err)
				}
				if ok && !(json.Valid(got) && sameDoc(string(got), ref.String())) || !ok && len(got) != 0 {
					t.Errorf("FIFO reader got %d bytes %.60q, want %d", len(got), got, ref.Len())
				}
			},
		},
		{
			name: "symlink to existing file",
			setup: func(t *testing.T, dir string) string {
				tgt := filepath.Join(dir, "target.json")
				if err := os.WriteFile(tgt, []byte(precious), 0o640); err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, "link.json")
				if err := os.Symlink("target.json", p); err != nil {
					t.Fatal(err)
				}
				return p
			},
			check: func(t *testing.T, path string, ok bool, _ []byte) {
				if l, err := os.Readlink(path); err != nil || l != "target.json" {
					t.Errorf("symlink replaced: %q %v", l, err)
				}
				regular(t, filepath.Join(filepath.Dir(path), "target.json"), ok, precious, 0o640)
			},
		},
		{
			name: "existing file",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "out.json")
				safeouttest.WriteFile(t, p, precious, 0o600)
				return p
			},
			check: func(t *testing.T, path string, ok bool, _ []byte) {
				regular(t, path, ok, precious, 0o600)
			},
		},
		{
			name:  "new file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "new.json") },
			check: func(t *testing.T, path string, ok bool, _ []byte) {
				_, err := os.Lstat(path)
				if !ok {
					if !errors.Is(err, os.ErrNotExist) {
						t.Errorf("failed conversion left %s: %v", path, err)
					}
					return
				}
				regular(t, path, ok, "", safeouttest.CreateMode(t))
			},
		},
	}
	for _, tg := range targets {
		for _, in := range []struct {
			name, file string
			ok         bool
		}{{"failing input", bad, false}, {"valid input", good, true}} {
			t.Run(tg.name+"/"+in.name, func(t *testing.T) {
				dir := t.TempDir()
				path := tg.setup(t, dir)
				before := safeouttest.DirNames(t, dir)
				var got []byte
				done := make(chan struct{})
				st, _ := os.Lstat(path)
				isFIFO := st != nil && st.Mode()&os.ModeNamedPipe != 0
				if isFIFO {
					go func() {
						defer close(done)
						f, err := os.Open(path)
						if err != nil {
							return
						}
						got, _ = io.ReadAll(f)
						f.Close()
					}()
				}
				var stdout, stderr bytes.Buffer
				rc := runConvert(context.Background(), []string{in.file, "-q", "-o", path}, &stdout, &stderr)
				if isFIFO {
					// Unblock the reader if convert never opened the FIFO.
					if f, err := os.OpenFile(path, os.O_RDWR, 0); err == nil {
						f.Close()
					}
					<-done
				}
				if (rc == 0) != in.ok {
					t.Fatalf("rc %d, stderr %s", rc, stderr.String())
				}
				if !in.ok && !strings.Contains(stderr.String(), "abc") {
					t.Errorf("stderr does not name the bad POS: %s", stderr.String())
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout got %d bytes with -o", stdout.Len())
				}
				tg.check(t, path, in.ok, got)
				after := safeouttest.DirNames(t, dir)
				if in.ok && tg.name == "new file" {
					before = append(before, "new.json")
					sort.Strings(before)
				}
				if strings.Join(after, "|") != strings.Join(before, "|") {
					t.Errorf("directory holds %q after the run, want %q (temporary file left?)", after, before)
				}
			})
		}
	}
}

// TestConvertOutputRefusesDirectory: -o DIR is an error and leaves DIR alone.
func TestConvertOutputRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "good.vcf")
	if err := os.WriteFile(in, []byte(convertGoodVCF), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sub")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if rc := runConvert(context.Background(), []string{in, "-q", "-o", out}, &stdout, &stderr); rc != 1 {
		t.Fatalf("rc %d, want 1", rc)
	}
	if got := safeouttest.DirNames(t, dir); strings.Join(got, "|") != "good.vcf|sub" {
		t.Errorf("directory holds %q", got)
	}
}

// TestConvertOptions: `convert`'s flags, parsed in options.go, may come
// before or after FILE; -h exits 0, no FILE or two FILEs exit 2.
func TestConvertOptions(t *testing.T) {
	for _, c := range []struct {
		args []string
		want *convertOptions
		code int
	}{
		{[]string{"in.vcf"}, &convertOptions{file: "in.vcf"}, 0},
		{[]string{"-o", "out.json", "in.vcf", "-q", "--project-id", "7", "--fallback"},
			&convertOptions{file: "in.vcf", out: "out.json", quiet: true, projectID: 7, fallback: true}, 0},
		{[]string{"in.vcf", "--sample-id", "s", "--organism", "o", "--reference-genome", "g",
			"--omics-type", "genomics", "--format", "vcf", "--name", "x.vcf"},
			&convertOptions{file: "in.vcf", sampleID: "s", organism: "o", refGenome: "g",
				omics: "genomics", format: "vcf", name: "x.vcf"}, 0},
		{[]string{"-h"}, nil, 0},
		{nil, nil, 2},
		{[]string{"a.vcf", "b.vcf"}, nil, 2},
		{[]string{"--no-such-flag", "a.vcf"}, nil, 2},
	} {
		got, code := parseConvertOptions(c.args, io.Discard)
		if code != c.code || (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%q: %+v, %d; want %+v, %d", c.args, got, code, c.want, c.code)
		}
	}
}

// TestConvertLateFileformatStreamed: -o FILE streams the document; a VCF
// whose ##fileformat= line follows a record changes its head afterwards,
// so convert starts over without streaming and writes the same document
// as on stdout (issue 13 #4); /dev/null is streamed too.
func TestConvertLateFileformatStreamed(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "late.vcf")
	vcf := "##fileformat=VCFv4.1\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" +
		"chr1\t10\trs1\tA\tG\t50\tPASS\tDP=3\n##fileformat=VCFv4.3\nchr2\t20\t.\tC\tT\t.\tq10\tDP=4\n"
	if err := os.WriteFile(in, []byte(vcf), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "late.json")
	var stdout, stderr bytes.Buffer
	if rc := runConvert(context.Background(), []string{in, "-q", "-o", out}, &stdout, &stderr); rc != 0 {
		t.Fatalf("rc %d: %s", rc, stderr.String())
	}
	doc, err := os.ReadFile(out)
	if err != nil || !json.Valid(doc) || !bytes.Contains(doc, []byte(`"vcf_version": "VCFv4.3"`)) {
		t.Fatalf("%v:\n%s", err, doc)
	}
	if rc := runConvert(context.Background(), []string{in, "-q", "-o", os.DevNull}, &stdout, &stderr); rc != 0 {
		t.Fatalf("/dev/null: rc %d: %s", rc, stderr.String())
	}
}
