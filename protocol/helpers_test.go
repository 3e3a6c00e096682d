package protocol

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// forEachCelery skips under -short, then runs f once per Celery version as
// subtests "celery5.2", "celery5.5" (one after the other: the decode
// script shares Redis DB 15); a runtime that is not installed fails its
// subtest with the command that installs it.
func forEachCelery(t *testing.T, f func(t *testing.T, py pyruntime.Runtime)) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop test needs the Python Celery (5.2: /usr/bin/python3, 5.5: scripts/celery55.sh); skipped under -short")
	}
	pyruntime.Run(t, false, f)
}

// runPython runs a Python script with stdin on the runtime py and returns
// its stdout.
func runPython(t *testing.T, py pyruntime.Runtime, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := py.Command(append([]string{"-c", script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python (%s) failed: %v\nstderr:\n%s", py.Name(), err, stderr.String())
	}
	return out
}

// fixtures returns the files matching testdata/<dir>/*.json, sorted.
func fixtures(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s (capture them with testdata/interop/capture/capture_protocol.py)", dir)
	}
	return files
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fixtureName(path string) string {
	return strings.TrimSuffix(filepath.Base(path), ".json")
}

// golden compares v (as indented JSON) with testdata/golden/<name>.json,
// rewriting it under -update.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("missing golden file %s (run go test ./protocol -run %s -update): %v", path, t.Name(), err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file (rerun with -update after checking):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
