package worker

import "testing"

func TestPeekRawTaskID(t *testing.T) {
	tests := []struct {
		raw      string
		id, task string
	}{
		{`{"body": 42, "headers": {"id": "abc", "task": "t.x"}}`, "abc", "t.x"},
		{`{"headers": {"id": 5}}`, "", ""},
		{`{"headers": [1]}`, "", ""},
		{`[1]`, "", ""},
		{"\xff{", "", ""},
		{`{"headers": {"id": "x"`, "", ""},
		{``, "", ""},
	}
	for _, tc := range tests {
		id, task := peekRawTaskID([]byte(tc.raw))
		if id != tc.id || task != tc.task {
			t.Errorf("peekRawTaskID(%q) = %q, %q; want %q, %q", tc.raw, id, task, tc.id, tc.task)
		}
	}
}

func FuzzPeekRawTaskID(f *testing.F) {
	f.Add([]byte(`{"body": 42, "headers": {"id": "abc", "task": "t.x"}}`))
	f.Add([]byte(`{"headers": {"id": 5}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, _ := peekRawTaskID(raw)
		if len(id) > 255 {
			t.Fatalf("id of %d bytes", len(id))
		}
	})
}
