package jsonobj

import (
	"encoding/json"
	"testing"
)

func TestParseSetEncode(t *testing.T) {
	tests := []struct {
		name string
		in   string
		set  [][2]string
		want string
	}{
		{"sql null", ``, [][2]string{{"omics_type", `"genomics"`}}, `{"omics_type": "genomics"}`},
		{"json null", `null`, [][2]string{{"a", "1"}}, `{"a": 1}`},
		{"not an object", `[1,2]`, nil, `{}`},
		{"order kept", `{"b":1,"a":2}`, [][2]string{{"b", "3"}, {"c", "4"}}, `{"b": 3, "a": 2, "c": 4}`},
		{"duplicates collapse", `{"a":1,"a":2}`, [][2]string{{"a", "3"}}, `{"a": 3}`},
		{"python escapes", `{"f":"é😀<&>\u0001"}`, [][2]string{{"g", `"a\u003cb"`}}, `{"f": "\u00e9\ud83d\ude00<&>\u0001", "g": "a<b"}`},
		{"nested spacing", `{"l":[1,2,{"x":[]}],"s":"a, b: c"}`, nil, `{"l": [1, 2, {"x": []}], "s": "a, b: c"}`},
	}
	for _, tc := range tests {
		o, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, kv := range tc.set {
			o = o.Set(kv[0], json.RawMessage(kv[1]))
		}
		if got := string(o.Encode()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestInt64(t *testing.T) {
	tests := []struct {
		in string
		n  int64
		ok bool
	}{
		{`{"n": 12}`, 12, true},
		{`{"n": 12.0}`, 12, true},
		{`{"n": 12.5}`, 0, false},
		{`{"n": "12"}`, 0, false},
		{`{"n": null}`, 0, false},
		{`{}`, 0, false},
	}
	for _, tc := range tests {
		o, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := o.Int64("n"); n != tc.n || ok != tc.ok {
			t.Errorf("%s: %d %v", tc.in, n, ok)
		}
	}
}

func FuzzParseObject(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2],"c":{"d":"é"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := Parse(b)
		if err != nil {
			return
		}
		out := o.Encode()
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, b)
		}
		var x, y any
		if json.Unmarshal(b, &x) != nil {
			return
		}
		if _, isObj := x.(map[string]any); isObj && json.Unmarshal(out, &y) == nil {
			bx, _ := json.Marshal(x)
			by, _ := json.Marshal(y)
			if string(bx) != string(by) {
				t.Fatalf("value changed: %s -> %s", bx, by)
			}
		}
	})
}
