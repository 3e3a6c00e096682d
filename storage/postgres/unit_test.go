package postgres

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestParseDatabaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"postgresql://u:p@db:5432/omicsomics", "postgres://u:p@db:5432/omicsomics", false},
		{"postgres://u@db/x", "postgres://u@db/x", false},
		{"postgresql+asyncpg://postgres:postgres@db:5432/omicsomics", "postgres://postgres:postgres@db:5432/omicsomics", false},
		{"postgresql+psycopg://u:p%40ss@h/d", "postgres://u:p%40ss@h/d", false},
		{"postgresql+psycopg2://u@h/d?sslmode=require", "postgres://u@h/d?sslmode=require", false},
		{"postgresql+asyncpg://u@h/d?ssl=require", "postgres://u@h/d?sslmode=require", false},
		{"postgresql+asyncpg://u@h/d?ssl=true", "postgres://u@h/d?sslmode=require", false},
		{"postgresql+asyncpg://u@h/d?ssl=false", "postgres://u@h/d?sslmode=disable", false},
		{"postgresql+asyncpg://u@h/d?ssl=verify-full&sslmode=prefer", "postgres://u@h/d?sslmode=prefer", false},
		{"postgresql+asyncpg://u@h/d?prepared_statement_cache_size=0&timeout=5", "postgres://u@h/d?connect_timeout=5", false},
		{"POSTGRESQL+ASYNCPG://u@h/d", "postgres://u@h/d", false},
		{"postgresql+asyncpg://u@h/d?ssl=maybe", "", true},
		{"mysql://u@h/d", "", true},
		{"sqlite+aiosqlite:///x.db", "", true},
		{"", "", true},
	}
	for _, tc := range tests {
		got, err := ParseDatabaseURL(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseDatabaseURL(%q) = %q, %v; want %q (err %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnsupportedURL) {
			t.Errorf("ParseDatabaseURL(%q): error %v is not ErrUnsupportedURL", tc.in, err)
		}
	}
}

func TestObjectMerge(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		patch map[string]any
		want  string
	}{
		{"sql null", ``, map[string]any{"omics_type": "genomics"}, `{"omics_type": "genomics"}`},
		{"json null", `null`, map[string]any{"a": 1}, `{"a": 1}`},
		{
			"order kept, known keys first",
			`{"alg":"AES-GCM","version":"1","size":5,"omics_type":"x"}`,
			map[string]any{"zeta": true, "omics_type": "genomics", "processing_info": json.RawMessage(`{"converted":true,"b":1,"a":2}`), "processed_file_id": 7},
			`{"alg": "AES-GCM", "version": "1", "size": 5, "omics_type": "genomics", "processed_file_id": 7, "processing_info": {"converted": true, "b": 1, "a": 2}, "zeta": true}`,
		},
		{"duplicates collapse", `{"a":1,"a":2}`, map[string]any{"a": 3}, `{"a": 3}`},
		{"python escapes", `{"f":"é😀<&>\u0001"}`, map[string]any{"g": "a<b"}, `{"f": "\u00e9\ud83d\ude00<&>\u0001", "g": "a<b"}`},
		{"nested spacing", `{"l":[1,2,{"x":[]}],"s":"a, b: c"}`, nil, `{"l": [1, 2, {"x": []}], "s": "a, b: c"}`},
	}
	for _, tc := range tests {
		o, err := parseObject([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if o, err = o.merge(tc.patch); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := string(o.encode()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestProcessedFileID(t *testing.T) {
	tests := []struct {
		meta string
		id   int64
		ok   bool
	}{
		{`{}`, 0, false},
		{`null`, 0, false},
		{`{"processed_file_id": 12}`, 12, true},
		{`{"processed_file_id": 12.0}`, 12, true},
		{`{"processed_file_id": 0}`, 0, false},
		{`{"processed_file_id": null}`, 0, false},
		{`{"processed_file_id": "12"}`, 0, false},
	}
	for _, tc := range tests {
		f := &File{Metadata: json.RawMessage(tc.meta)}
		id, ok := f.ProcessedFileID()
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: %d %v", tc.meta, id, ok)
		}
	}
}

func FuzzParseObject(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2],"c":{"d":"é"}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseObject(b)
		if err != nil {
			return
		}
		out := o.encode()
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
