package protocol

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// needPython skips under -short and fails with the tree's hint when the
// Debian Python with celery, or the Redis database its scripts use
// (testenv.RedisDBHostile), is missing.
func needPython(t *testing.T) {
	t.Helper()
	testenv.NeedPython(t)
	testenv.NeedRedis(t, testenv.RedisDBHostile)
}

// runPython runs a Python script with stdin and returns its stdout.
func runPython(t *testing.T, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.PythonBin, append([]string{"-c", script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python failed: %v\nstderr:\n%s", err, stderr.String())
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
