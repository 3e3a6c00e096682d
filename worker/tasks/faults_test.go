package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/worker"
)

// tinyTmpfs mounts a tmpfs of the given options (e.g. "size=64k") on a
// fresh directory and unmounts it at cleanup. It skips when mounting is
// not possible (not root, no CAP_SYS_ADMIN): TestLocalFaultKind covers the
// classification without it.
func tinyTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// bigVCF is a valid VCF whose document does not fit in 64 KiB.
func bigVCF(lines int) []byte {
	var b strings.Builder
	b.WriteString("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&b, "chr1\t%d\trs%d\tA\tT\t50\tPASS\tDP=%d\n", i*10, i, i%97)
	}
	return []byte(b.String())
}

// TestWorkerDiskFaultsAreNotTheFilesFault: a --tmp-dir on a full (or
// read-only) file system fails with OSError naming the worker, retried
// when it can clear, and leaves the raw row, the rows and the objects as
// they were: the user's file is never marked unconvertible.
func TestWorkerDiskFaultsAreNotTheFilesFault(t *testing.T) {
	cases := []struct {
		name      string
		mount     string
		tun       Tuning
		message   string
		transient bool
	}{
		{"full/process_file_async", "size=64k", Tuning{}, "worker temporary storage full while ", true},
		{"full/process_large_file_async", "size=64k", LargeFileTuning, "worker temporary storage full while ", true},
		{"read-only/process_file_async", "ro,size=64k", Tuning{}, "worker temporary storage is read-only while ", false},
	}
	content := bigVCF(5000)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "local")
			cfg := e.config()
			cfg.TempDir = tinyTmpfs(t, tc.mount)
			p, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			raw := e.upload(t, "big.vcf", content)
			rowsBefore, objsBefore, metaBefore := e.rowCount(t), e.list(t), e.metadata(t, raw.ID)

			_, err = p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, tc.tun)
			if got := transientPy(err) != nil; got != tc.transient {
				t.Fatalf("transient = %v, want %v (err %v)", got, tc.transient, err)
			}
			// What the runtime records: RETRY OSError, then FAILURE OSError
			// once the retries are spent; or FAILURE OSError at once.
			retry, _, first := runtimeOutcome(p, err, 0)
			lastRetry, _, last := runtimeOutcome(p, err, 3)
			if retry != tc.transient || lastRetry {
				t.Errorf("retry of the first run %v, of the last %v; want %v, false", retry, lastRetry, tc.transient)
			}
			for _, pe := range []*worker.PyError{first, last} {
				if pe == nil || pe.Type != "OSError" {
					t.Fatalf("recorded %v, want OSError (err %v)", pe, err)
				}
				msg, _ := pe.Args[0].(string)
				if !strings.HasPrefix(msg, tc.message) || strings.Contains(msg, "Processing failed") {
					t.Errorf("message %q, want prefix %q", msg, tc.message)
				}
			}
			if tc.transient && !errors.Is(err, syscall.ENOSPC) {
				t.Errorf("cause %v is not ENOSPC", err)
			}
			meta := e.metadata(t, raw.ID)
			if fmt.Sprint(meta) != fmt.Sprint(metaBefore) {
				t.Errorf("raw metadata changed:\n%v\n->\n%v", metaBefore, meta)
			}
			if n := e.rowCount(t); n != rowsBefore {
				t.Errorf("rows %d -> %d", rowsBefore, n)
			}
			if objs := e.list(t); joinLines(objs) != joinLines(objsBefore) {
				t.Errorf("objects %v -> %v", objsBefore, objs)
			}
			if ents, _ := os.ReadDir(cfg.TempDir); len(ents) != 0 {
				t.Errorf("temporary files left behind: %v", ents)
			}
		})
	}
}

// TestLocalFaultKind is the classification with injected errnos (what
// TestWorkerDiskFaultsAreNotTheFilesFault measures on a real file system).
func TestLocalFaultKind(t *testing.T) {
	p := &Processor{} // localFault needs no store
	for _, tc := range []struct {
		errno     syscall.Errno
		what      string
		transient bool
	}{
		{syscall.ENOSPC, "temporary storage full", true},
		{syscall.EDQUOT, "temporary storage quota exceeded", true},
		{syscall.EMFILE, "out of file descriptors", true},
		{syscall.ENFILE, "out of file descriptors", true},
		{syscall.EIO, "temporary storage I/O error", false},
		{syscall.EROFS, "temporary storage is read-only", false},
		{syscall.EACCES, "temporary storage not writable", false},
		{syscall.ENOENT, "temporary directory missing", false},
	} {
		t.Run(tc.errno.Error(), func(t *testing.T) {
			cause := &processing.OutputError{Op: "writing record spool",
				Err: &os.PathError{Op: "write", Path: "/tmp/omics-records-1.json", Err: tc.errno}}
			err := fmt.Errorf("converting: %w", cause)
			if !isLocalFault(err) {
				t.Fatal("not recognised as a local fault")
			}
			got := p.localFault(err, "converting file %d", 7)
			if (transientPy(got) != nil) != tc.transient {
				t.Errorf("transient = %v, want %v", !tc.transient, tc.transient)
			}
			var pe *worker.PyError
			if !errors.As(got, &pe) || pe.Type != "OSError" {
				t.Fatalf("%v is not an OSError", got)
			}
			want := "worker " + tc.what + " while converting file 7: converting: writing record spool: write /tmp/omics-records-1.json: " + tc.errno.Error()
			if pe.Args[0] != want {
				t.Errorf("message %q\nwant    %q", pe.Args[0], want)
			}
		})
	}
}

// TestRawFileIDsNoRowCanHave: ids outside data_files.id's int4 range (and
// beyond int64) are "File N not found", like any missing row, not a
// database encoding error; wrong types are TypeErrors (issue 9 #11).
func TestRawFileIDsNoRowCanHave(t *testing.T) {
	e := newEnv(t, "local")
	p := e.processor(t)
	for _, tc := range []struct {
		arg     any
		excType string
		message string
	}{
		{json.Number("2147483648"), "ValueError", "File 2147483648 not found"},
		{json.Number("-2147483649"), "ValueError", "File -2147483649 not found"},
		{json.Number("9223372036854775807"), "ValueError", "File 9223372036854775807 not found"},
		{json.Number("100000000000000000000"), "ValueError", "File 100000000000000000000 not found"},
		{json.Number("-100000000000000000000"), "ValueError", "File -100000000000000000000 not found"},
		{json.Number("0"), "ValueError", "File 0 not found"},
		{json.Number("-1"), "ValueError", "File -1 not found"},
		{json.Number("4e9"), "ValueError", "File 4000000000 not found"}, // 4e9 is an integral float, as 5.0 is 5
		{json.Number("1.5"), "TypeError", "argument 'raw_file_id' must be int, not float (1.5)"},
		{true, "TypeError", "argument 'raw_file_id' must be int, not bool (True)"},
		{"12", "TypeError", "argument 'raw_file_id' must be int, not str ('12')"},
	} {
		t.Run(fmt.Sprint(tc.arg), func(t *testing.T) {
			// What Handler does (a bare worker.Task cannot store states).
			task := &worker.Task{ID: "t", Kwargs: map[string]any{"raw_file_id": tc.arg}}
			id, err := rawFileID(task)
			if err == nil {
				_, err = p.Process(context.Background(), nil, Request{RawFileID: id}, Tuning{})
			}
			var pe *worker.PyError
			if !errors.As(err, &pe) || pe.Type != tc.excType || pe.Args[0] != tc.message {
				t.Errorf("error %#v, want %s(%q)", err, tc.excType, tc.message)
			}
		})
	}
}

// TestLongFilename: a raw name that fits data_files.filename but not with
// ".processed.json" is converted; the processed name is cut at a
// character boundary and keeps the suffix (issue 9 #11).
func TestLongFilename(t *testing.T) {
	e := newEnv(t, "local")
	p := e.processor(t)
	for _, tc := range []struct{ name, want string }{
		{strings.Repeat("n", 493) + ".tsv", strings.Repeat("n", 493) + ".tsv.processed.json"},   // 512: fits
		{strings.Repeat("n", 500) + ".tsv", strings.Repeat("n", 497) + ".processed.json"},       // cut
		{strings.Repeat("é", 508) + ".tsv", strings.Repeat("é", 497) + ".processed.json"},       // characters, not bytes
		{strings.Repeat("😀", 498) + "counts.tsv", strings.Repeat("😀", 497) + ".processed.json"}, // 4-byte runes
	} {
		t.Run(fmt.Sprint(len([]rune(tc.name))), func(t *testing.T) {
			raw := e.upload(t, tc.name, readDemo(t, "counts.tsv"))
			res, err := p.Process(context.Background(), nil, Request{RawFileID: raw.ID}, Tuning{})
			if err != nil {
				t.Fatal(err)
			}
			pf, err := e.files.GetFile(context.Background(), res.ProcessedFileID)
			if err != nil {
				t.Fatal(err)
			}
			if pf.Filename != tc.want {
				t.Errorf("processed name %q (%d chars), want %q", pf.Filename, len([]rune(pf.Filename)), tc.want)
			}
			info, _ := e.metadata(t, raw.ID)["processing_info"].(map[string]any)
			if info["original_filename"] != tc.name {
				t.Errorf("processing_info.original_filename %v", info["original_filename"])
			}
		})
	}
}

// TestTimeLimitsAreAppDefaults: the Omicsomics 3600/3300 s are the app's
// configuration, which the worker's --time-limit/--soft-time-limit
// override, not task attributes that would beat them (issue 9 #12; the
// precedence itself: worker.TestTimeLimitPrecedence).
func TestTimeLimitsAreAppDefaults(t *testing.T) {
	e := newEnv(t, "local")
	reg := worker.NewRegistry()
	if err := Register(reg, e.config()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{ProcessFileTask, ProcessLargeFileTask} {
		o, ok := reg.Options(name)
		if !ok || o.TimeLimit != 0 || o.SoftTimeLimit != 0 || o.AppTimeLimit != 3600*time.Second || o.AppSoftTimeLimit != 3300*time.Second {
			t.Errorf("%s: own %v/%v, app %v/%v; want none, 3600s/3300s", name, o.TimeLimit, o.SoftTimeLimit, o.AppTimeLimit, o.AppSoftTimeLimit)
		}
	}
}
