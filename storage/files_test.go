package storage

import (
	"encoding/json"
	"testing"
)

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

func TestStringField(t *testing.T) {
	for s, want := range map[string]string{"genomics": `"genomics"`, `a"b\`: `"a\"b\\"`, "é<": `"é\u003c"`} {
		if f := StringField("k", s); f.Key != "k" || string(f.Value) != want {
			t.Errorf("StringField(%q) = %s, want %s", s, f.Value, want)
		}
	}
}
