package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

func TestPyRepr(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "None"},
		{true, "True"},
		{false, "False"},
		{"abc", "'abc'"},
		{"it's", `"it's"`},
		{`say "hi"`, `'say "hi"'`},
		{`it's "x"`, `'it\'s "x"'`},
		{"a\\b\n\t\r\x00\x7f", `'a\\b\n\t\r\x00\x7f'`},
		{"héllo ✓ 日本", "'héllo ✓ 日本'"},
		{"\u00a0\u200b\u2028", `'\xa0\u200b\u2028'`},
		{"\U0001F600", "'\U0001F600'"},
		{json.Number("42"), "42"},
		{json.Number("-0"), "0"},
		{json.Number("1.0"), "1.0"},
		{json.Number("1e5"), "100000.0"},
		{json.Number("1E-7"), "1e-07"},
		{json.Number("123456789012345678901234567890"), "123456789012345678901234567890"},
		{1.5, "1.5"},
		{100.0, "100.0"},
		{1e16, "1e+16"},
		{1e15, "1000000000000000.0"},
		{0.0001, "0.0001"},
		{0.00001, "1e-05"},
		{-2.5e-10, "-2.5e-10"},
		{func() float64 { a := 0.1; return a + 0.2 }(), "0.30000000000000004"},
		{3, "3"},
		{[]any{}, "[]"},
		{[]any{json.Number("1"), "a", nil}, "[1, 'a', None]"},
		{map[string]any{}, "{}"},
		{map[string]any{"b": 1, "a": []any{true}}, "{'a': [True], 'b': 1}"},
		{[]string{"x"}, "['x']"},
		{NewExceptionInfo("ValueError", "builtins", "boom"), "ValueError('boom')"},
	}
	for _, tc := range tests {
		if got := PyRepr(tc.in); got != tc.want {
			t.Errorf("PyRepr(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestPyReprArgsAndException(t *testing.T) {
	tests := []struct{ got, want string }{
		{PyReprArgs(nil), "()"},
		{PyReprArgs([]any{json.Number("1")}), "(1,)"},
		{PyReprArgs([]any{json.Number("2"), json.Number("2")}), "(2, 2)"},
		{PyReprException(NewExceptionInfo("KeyError", "builtins")), "KeyError()"},
		{PyReprException(NewExceptionInfo("TimeLimitExceeded", ModuleBilliard, 300.0)), "TimeLimitExceeded(300.0)"},
		{PyReprException(NewExceptionInfo("Outer.Inner", "m", "a", json.Number("1"))), "Inner('a', 1)"},
		{PyReprException(NewExceptionInfo("NotRegistered", ModuleCelery, "proj.tasks.nope")), "NotRegistered('proj.tasks.nope')"},
		{PyReprException(nil), "None"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
	s, err := PyReprJSON([]byte(`{"z": 1, "a": [1.0, "x", null, {"k": false}]}`))
	if err != nil || s != "{'z': 1, 'a': [1.0, 'x', None, {'k': False}]}" {
		t.Errorf("PyReprJSON = %s, %v", s, err)
	}
}

func TestSafeRepr(t *testing.T) {
	long := strings.Repeat("x", 30)
	tests := []struct {
		got, want string
	}{
		{SafeRepr("it's", 0), `'it\'s'`},
		{SafeRepr("a\nb\\c", 0), "'a\nb\\c'"},
		{SafeRepr([]any{[]any{[]any{[]any{json.Number("1")}}}}, 0), "[[[[...]]]]"},
		{SafeReprArgs([]any{[]any{[]any{[]any{json.Number("1")}}}}, 0), "([[[...]]],)"},
		{SafeRepr(map[string]any{"a": long, "b": json.Number("2")}, 12), "{'a': 'xxxxxx...', ...}"},
		{SafeRepr("abcdefghij klmnop", 10), "'abcdefghij...'"},
		{SafeRepr([]any{"abc def ghi", "abc def ghi", "abc def ghi"}, 20), "['abc def ghi', 'abc...', ...]"},
		{SafeReprArgs([]any{json.Number("1")}, 0), "(1,)"},
		{SafeReprArgs(nil, 0), "()"},
		{SafeRepr(nil, 0), "None"},
		{SafeRepr(true, 0), "True"},
		{SafeRepr(1e20, 0), "1e+20"},
	}
	for i, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%d: got %q, want %q", i, tc.got, tc.want)
		}
	}
	if got := SafeRepr(strings.Repeat("y", 5000), 0); len(got) > DefaultReprMax+5 {
		t.Errorf("not truncated: %d", len(got))
	}
}

// reprCases are JSON documents whose Python repr/saferepr we compare with
// the real interpreter.
var reprCases = []string{
	`null`, `true`, `false`, `0`, `-0`, `12345678901234567890123`, `1.5`, `2.0`, `1e16`, `1e15`, `1e-5`, `0.0001`,
	`123456.789e3`, `0.1`, `-2.5e-10`, `1.7976931348623157e308`, `5e-324`,
	`"plain"`, `"it's"`, `"say \"hi\""`, `"it's \"both\""`, `"back\\slash"`, `"tab\tnl\ncr\r"`, `"\u0000\u001f\u007f\u0080\u00a0\u00ad"`,
	`"héllo ✓ 日本 \ud83d\ude00"`, `"\u200b\u2028\u2029\ufeff\ue000"`, `"\u0378"`,
	`[]`, `{}`, `[1, [2, [3, [4, [5]]]]]`, `{"a": {"b": {"c": {"d": 1}}}}`, `[1, "two", 3.0, null, true, {"k": ["v"]}]`,
	`["abc def ghi", "abc def ghi", "abc def ghi", "abc def ghi"]`, `"` + strings.Repeat("word ", 300) + `"`,
	`[` + strings.Repeat(`"abcdefghijklmnopqrstuvwxyz", `, 60) + `1]`, `[1, 2]`, `[1]`, `["x"]`,
}

// TestReprMatchesPython compares PyRepr/PyReprJSON with repr() and
// SafeRepr/SafeReprArgs with celery.utils.saferepr.saferepr for several
// limits, running each Python of the test matrix.
func TestReprMatchesPython(t *testing.T) { forEachCelery(t, testReprMatchesPython) }

func testReprMatchesPython(t *testing.T, py pyruntime.Runtime) {
	const script = `
import json, sys
from celery.utils.saferepr import saferepr
out = []
for doc in json.load(sys.stdin):
    v = json.loads(doc)
    row = {"repr": repr(v), "safe": {}}
    for n in (1024, 40, 13, 5):
        row["safe"][str(n)] = saferepr(v, n)
        if isinstance(v, list):
            row["safe"]["t" + str(n)] = saferepr(tuple(v), n)
    out.append(row)
json.dump(out, sys.stdout)
`
	in, _ := json.Marshal(reprCases)
	var rows []struct {
		Repr string            `json:"repr"`
		Safe map[string]string `json:"safe"`
	}
	if err := json.Unmarshal(runPython(t, py, script, in), &rows); err != nil {
		t.Fatal(err)
	}
	for i, doc := range reprCases {
		var v any
		if err := unmarshalNumber([]byte(doc), &v); err != nil {
			t.Fatal(err)
		}
		got, err := PyReprJSON([]byte(doc))
		if err != nil || got != rows[i].Repr {
			t.Errorf("PyReprJSON(%s) = %q, Python repr %q", doc, got, rows[i].Repr)
		}
		if m, ok := v.(map[string]any); !ok || len(m) <= 1 { // Go maps are sorted
			if got := PyRepr(v); got != rows[i].Repr {
				t.Errorf("PyRepr(%s) = %q, Python repr %q", doc, got, rows[i].Repr)
			}
		}
		for _, n := range []int{1024, 40, 13, 5} {
			key := itoa(n)
			if got := SafeRepr(v, n); got != rows[i].Safe[key] {
				t.Errorf("SafeRepr(%s, %d) = %q, Python %q", doc, n, got, rows[i].Safe[key])
			}
			if l, ok := v.([]any); ok {
				if got := SafeReprArgs(l, n); got != rows[i].Safe["t"+key] {
					t.Errorf("SafeReprArgs(%s, %d) = %q, Python %q", doc, n, got, rows[i].Safe["t"+key])
				}
			}
		}
	}
}

func itoa(n int) string { return PyRepr(n) }
