package envelope

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

// pythonScript is our own Python re-statement of crypto.py, run with each
// interpreter of the test matrix (internal/pyruntime) and its
// python3-cryptography: Debian bookworm's (celery 5.2 runtime) and trixie's
// (celery 5.5 runtime, what a current deployment installs).
var pythonScript = filepath.Join("..", "..", "testdata", "interop", "crypto", "envelope.py")

type pyRequest struct {
	Op     string `json:"op"`
	Master string `json:"master"`
	User   int64  `json:"user"`
	Data   string `json:"data"`
}

type pyResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Error string `json:"error"`
}

// runPython runs all requests in one interpreter (start-up dominates).
func runPython(t *testing.T, py pyruntime.Runtime, reqs []pyRequest) []pyResponse {
	t.Helper()
	if out, err := py.Command("-c", "import cryptography").CombinedOutput(); err != nil {
		t.Fatalf("the Python cross-check needs python3-cryptography in %s (apt-get install python3-cryptography): %v\n%s", py.Name(), err, out)
	}
	script, err := filepath.Abs(pythonScript)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(reqs)
	cmd := py.Command(script, "batch")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", pythonScript, err, stderr.String())
	}
	var res []pyResponse
	if err := json.Unmarshal(out, &res); err != nil || len(res) != len(reqs) {
		t.Fatalf("bad batch answer (%v): %s", err, out)
	}
	return res
}

func TestPythonCrossCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("live Python cross-check skipped with -short")
	}
	pyruntime.Run(t, true, testPythonCrossCheck)
}

func testPythonCrossCheck(t *testing.T, py pyruntime.Runtime) {
	masters := []string{
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"8f3b2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e2f8a9d6c4e", // the repo's public dev default
		"not-hex",
		"abc", // odd length: UTF-8
	}
	users := []int64{1, 42, 987654321}
	plain := map[string][]byte{
		"empty": {},
		"hello": []byte("hello"),
		"vcf":   bytes.Repeat([]byte("chr1\t12345\t.\tA\tG\t50\tPASS\t.\n"), 5000),
	}

	type check struct {
		name   string
		verify func(r pyResponse) error
	}
	var reqs []pyRequest
	var checks []check
	add := func(req pyRequest, name string, verify func(pyResponse) error) {
		reqs = append(reqs, req)
		checks = append(checks, check{name, verify})
	}
	for _, m := range masters {
		master, err := ParseMasterKey(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			key := DeriveUserKey(master, u)
			add(pyRequest{Op: "derive", Master: m, User: u}, fmt.Sprintf("derive %q %d", m, u), func(r pyResponse) error {
				if r.Data != hex.EncodeToString(key) {
					return fmt.Errorf("Python key %s, Go key %x", r.Data, key)
				}
				return nil
			})
		}
		key := DeriveUserKey(master, 42)
		for name, pt := range plain {
			// Go (single-shot and streaming) -> Python.
			blob, err := Encrypt(key, pt)
			if err != nil {
				t.Fatal(err)
			}
			var sb bytes.Buffer
			w, _ := NewEncryptWriter(key, &sb)
			w.Write(pt)
			w.Close()
			for kind, b := range map[string][]byte{"single": blob, "stream": sb.Bytes()} {
				add(pyRequest{Op: "decrypt", Master: m, User: 42, Data: hex.EncodeToString(b)},
					fmt.Sprintf("Go %s blob -> Python (%q, %s)", kind, m, name), func(r pyResponse) error {
						if !r.OK || r.Data != hex.EncodeToString(pt) {
							return fmt.Errorf("Python decrypt: %+v", r.Error)
						}
						return nil
					})
			}
			// Python -> Go, single-shot and streaming.
			add(pyRequest{Op: "encrypt", Master: m, User: 42, Data: hex.EncodeToString(pt)},
				fmt.Sprintf("Python blob -> Go (%q, %s)", m, name), func(r pyResponse) error {
					pyBlob, _ := hex.DecodeString(r.Data)
					if got, err := Decrypt(key, pyBlob); err != nil || !bytes.Equal(got, pt) {
						return fmt.Errorf("Decrypt: %w", err)
					}
					dr, _ := NewDecryptReader(key, bytes.NewReader(pyBlob), int64(len(pyBlob)))
					var got bytes.Buffer
					if _, err := got.ReadFrom(dr); err != nil || !bytes.Equal(got.Bytes(), pt) {
						return fmt.Errorf("stream: %w", err)
					}
					return nil
				})
		}
	}
	// Both sides refuse the same things.
	master, _ := ParseMasterKey("not-hex")
	blob, _ := Encrypt(DeriveUserKey(master, 1), []byte("secret"))
	if _, err := Decrypt(DeriveUserKey(master, 2), blob); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Go with the wrong user: %v", err)
	}
	add(pyRequest{Op: "decrypt", Master: "not-hex", User: 2, Data: hex.EncodeToString(blob)}, "wrong user", func(r pyResponse) error {
		if r.OK || r.Error != "InvalidTag" {
			return fmt.Errorf("Python with the wrong user: %+v", r)
		}
		return nil
	})
	add(pyRequest{Op: "decrypt", Master: "not-hex", User: 1, Data: hex.EncodeToString(blob[:12])}, "short blob", func(r pyResponse) error {
		if r.OK || r.Error != ErrBlobTooShort.Error() {
			return fmt.Errorf("python short blob: %+v (Go says %q)", r, ErrBlobTooShort.Error())
		}
		return nil
	})

	for i, r := range runPython(t, py, reqs) {
		if err := checks[i].verify(r); err != nil {
			t.Errorf("%s: %v", checks[i].name, err)
		}
	}
}
