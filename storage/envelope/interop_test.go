package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pythonScript is our own Python re-statement of crypto.py, run with the
// Debian interpreter and its python3-cryptography.
var pythonScript = filepath.Join("..", "..", "testdata", "interop", "crypto", "envelope.py")

const debianPython = "/usr/bin/python3"

func requirePython(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("live Python cross-check skipped with -short")
	}
	if out, err := exec.Command(debianPython, "-c", "import cryptography").CombinedOutput(); err != nil {
		t.Fatalf("the Python cross-check needs %s with python3-cryptography (apt-get install python3-cryptography): %v\n%s", debianPython, err, out)
	}
}

func runPython(t *testing.T, stdin []byte, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(debianPython, append([]string{pythonScript}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, errors.New(strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func TestPythonCrossCheck(t *testing.T) {
	requirePython(t)
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
	for _, m := range masters {
		master, err := ParseMasterKey(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			key := DeriveUserKey(master, u)
			out, err := runPython(t, nil, "derive", m, strconv.FormatInt(u, 10))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != hex.EncodeToString(key) {
				t.Fatalf("master %q user %d: Python key %s, Go key %x", m, u, got, key)
			}
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
				got, err := runPython(t, b, "decrypt", m, "42")
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("%s/%s Go %s blob -> Python: %v", m, name, kind, err)
				}
			}
			// Python -> Go.
			pyBlob, err := runPython(t, pt, "encrypt", m, "42")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Decrypt(key, pyBlob); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s/%s Python blob -> Go Decrypt: %v", m, name, err)
			}
			r, _ := NewDecryptReader(key, bytes.NewReader(pyBlob), int64(len(pyBlob)))
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("%s/%s Python blob -> Go stream: %v", m, name, err)
			}
		}
	}
}

func TestPythonRejectsWhatGoRejects(t *testing.T) {
	requirePython(t)
	master, _ := ParseMasterKey("not-hex")
	blob, _ := Encrypt(DeriveUserKey(master, 1), []byte("secret"))
	// Wrong user: both sides refuse.
	if _, err := runPython(t, blob, "decrypt", "not-hex", "2"); err == nil || err.Error() != "InvalidTag" {
		t.Errorf("Python with the wrong user: %v", err)
	}
	if _, err := Decrypt(DeriveUserKey(master, 2), blob); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Go with the wrong user: %v", err)
	}
	// Short blob: same message.
	if _, err := runPython(t, blob[:12], "decrypt", "not-hex", "1"); err == nil || err.Error() != ErrBlobTooShort.Error() {
		t.Errorf("Python short blob: %v", err)
	}
}
