package postgres

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/omicsomics/omics-worker/storage"
	"github.com/omicsomics/omics-worker/storage/internal/jsonobj"
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

// TestMerge: a metadata patch is applied in its order; an existing key
// keeps its position, new keys are appended; the values are written as
// given (no re-encoding) and the object rendered as json.dumps does.
func TestMerge(t *testing.T) {
	str := storage.StringField
	raw := func(k, v string) storage.MetadataField {
		return storage.MetadataField{Key: k, Value: json.RawMessage(v)}
	}
	tests := []struct {
		name  string
		in    string
		patch []storage.MetadataField
		want  string
	}{
		{"sql null", ``, []storage.MetadataField{str("omics_type", "genomics")}, `{"omics_type": "genomics"}`},
		{"json null", `null`, []storage.MetadataField{raw("a", "1")}, `{"a": 1}`},
		{
			"order kept, new keys in patch order",
			`{"alg":"AES-GCM","version":"1","size":5,"omics_type":"x"}`,
			[]storage.MetadataField{raw("processed_file_id", "7"), raw("processing_info", `{"converted":true,"b":1,"a":2}`), str("omics_type", "genomics"), raw("zeta", "true")},
			`{"alg": "AES-GCM", "version": "1", "size": 5, "omics_type": "genomics", "processed_file_id": 7, "processing_info": {"converted": true, "b": 1, "a": 2}, "zeta": true}`,
		},
		{"patch order, not sorted", `{}`, []storage.MetadataField{raw("b", "2"), raw("a", "1")}, `{"b": 2, "a": 1}`},
		{"duplicates collapse", `{"a":1,"a":2}`, []storage.MetadataField{raw("a", "3")}, `{"a": 3}`},
		{"python escapes", `{"f":"é😀<&>\u0001"}`, []storage.MetadataField{str("g", "a<b")}, `{"f": "\u00e9\ud83d\ude00<&>\u0001", "g": "a<b"}`},
	}
	for _, tc := range tests {
		o, err := jsonobj.Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if o, err = merge(o, tc.patch); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := string(o.Encode()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if _, err := merge(jsonobj.Object{}, []storage.MetadataField{raw("x", `{"a":`)}); err == nil {
		t.Error("invalid JSON value accepted")
	}
}
