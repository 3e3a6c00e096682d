package pyfmt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.jsonl with /usr/bin/python3")

const (
	goldenPath = "testdata/golden.jsonl"
	python     = "/usr/bin/python3"
)

// pyCase is one line of testdata/golden.jsonl: what CPython answered.
type pyCase struct {
	Op   string          `json:"op"`
	In   json.RawMessage `json:"in"`
	Want json.RawMessage `json:"want"`
}

// pyOps computes, for one op, our answer to the input, encoded as the
// golden file encodes Python's ("error" when Python raises ValueError).
var pyOps = map[string]func(t *testing.T, in json.RawMessage) any{
	"repr_float": func(t *testing.T, in json.RawMessage) any { return FormatFloat(hexFloat(t, in)) },
	"json_float": func(t *testing.T, in json.RawMessage) any {
		return string(AppendJSONFloat(nil, hexFloat(t, in)))
	},
	"float": func(t *testing.T, in json.RawMessage) any {
		f, ok := ParseFloat(str(t, in))
		if !ok {
			return "error"
		}
		return FormatFloat(f)
	},
	"int": func(t *testing.T, in json.RawMessage) any {
		s, ok := ParseBigInt(str(t, in))
		if !ok {
			return "error"
		}
		return s
	},
	"strip":    func(t *testing.T, in json.RawMessage) any { return Strip(str(t, in)) },
	"lower":    func(t *testing.T, in json.RawMessage) any { return PyLower(str(t, in)) },
	"repr_str": func(t *testing.T, in json.RawMessage) any { return ReprString(str(t, in)) },
	"json_str": func(t *testing.T, in json.RawMessage) any { return string(AppendJSONString(nil, str(t, in))) },
	"isoformat": func(t *testing.T, in json.RawMessage) any {
		var f [8]*int
		mustDecode(t, in, &f)
		if f[7] == nil {
			return FormatISONaive(time.Date(*f[0], time.Month(*f[1]), *f[2], *f[3], *f[4], *f[5], *f[6]*1000, time.UTC))
		}
		loc := time.FixedZone("", *f[7])
		return FormatISO(time.Date(*f[0], time.Month(*f[1]), *f[2], *f[3], *f[4], *f[5], *f[6]*1000, loc))
	},
	"uuid4": func(t *testing.T, in json.RawMessage) any {
		var b [16]byte
		if n, err := hex.Decode(b[:], []byte(str(t, in))); err != nil || n != 16 {
			t.Fatalf("uuid4 input %s: %v", in, err)
		}
		u := UUID4(b)
		return []string{u.String(), u.Hex()}
	},
	"truthy": func(t *testing.T, in json.RawMessage) any {
		dec := json.NewDecoder(strings.NewReader(str(t, in)))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("truthy input %s: %v", in, err)
		}
		return Truthy(v)
	},
}

// TestPython checks every emulated built-in against the answers of
// CPython in testdata/golden.jsonl (written by testdata/gen_golden.py).
func TestPython(t *testing.T) {
	if *update {
		regenerate(t)
	}
	seen := map[string]int{}
	for i, c := range readGolden(t) {
		op, ok := pyOps[c.Op]
		if !ok {
			t.Fatalf("line %d: unknown op %q", i+1, c.Op)
		}
		seen[c.Op]++
		got, err := json.Marshal(op(t, c.In))
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, got, c.Want) {
			t.Errorf("line %d: %s(%s) = %s, Python says %s", i+1, c.Op, c.In, got, c.Want)
		}
	}
	for op := range pyOps {
		if seen[op] == 0 {
			t.Errorf("op %s has no case in %s", op, goldenPath)
		}
	}
}

func regenerate(t *testing.T) {
	if _, err := os.Stat(python); err != nil {
		t.Logf("-update: %s not found, keeping %s", python, goldenPath)
		return
	}
	cmd := exec.Command(python, filepath.Join("testdata", "gen_golden.py"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gen_golden.py: %v", err)
	}
	if err := os.WriteFile(goldenPath, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readGolden(t *testing.T) []pyCase {
	data, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (regenerate: go test -run TestPython -update)", err)
	}
	var cases []pyCase
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c pyCase
		mustDecode(t, sc.Bytes(), &c)
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func mustDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func str(t *testing.T, in json.RawMessage) string {
	var s string
	mustDecode(t, in, &s)
	return s
}

// hexFloat decodes Python's float.hex() ("0x1.8p+1", "-0x0.0p+0", "inf").
func hexFloat(t *testing.T, in json.RawMessage) float64 {
	s := str(t, in)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("float.hex %q: %v", s, err)
	}
	if math.IsNaN(f) {
		return math.NaN()
	}
	return f
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	mustDecode(t, a, &x)
	mustDecode(t, b, &y)
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
