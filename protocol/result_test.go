package protocol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestStates(t *testing.T) {
	tests := []struct {
		s                     string
		ready, exc, propagate bool
	}{
		{StatePending, false, false, false}, {StateReceived, false, false, false}, {StateStarted, false, false, false},
		{StateSuccess, true, false, false}, {StateFailure, true, true, true}, {StateRevoked, true, true, true},
		{StateRetry, false, true, false}, {StateRejected, false, false, false}, {StateIgnored, false, false, false},
		{"PROGRESS", false, false, false},
	}
	for _, tc := range tests {
		if IsReady(tc.s) != tc.ready || IsException(tc.s) != tc.exc || IsPropagate(tc.s) != tc.propagate {
			t.Errorf("%s: ready %v exc %v propagate %v", tc.s, IsReady(tc.s), IsException(tc.s), IsPropagate(tc.s))
		}
	}
}

func TestResultMetaMarshal(t *testing.T) {
	done := time.Date(2024, 5, 1, 12, 0, 1, 234567000, time.UTC)
	tb := "Traceback...\n"
	tests := []struct {
		name string
		m    ResultMeta
		want string
	}{
		{"success", ResultMeta{Status: StateSuccess, Result: json.Number("4"), DateDone: &done, TaskID: "id"},
			`{"status": "SUCCESS", "result": 4, "traceback": null, "children": [], "date_done": "2024-05-01T12:00:01.234567+00:00", "task_id": "id"}`},
		{"success naive float", ResultMeta{Status: StateSuccess, Result: 2.0, DateDone: &done, TaskID: "id", NaiveDateDone: true},
			`{"status": "SUCCESS", "result": 2.0, "traceback": null, "children": [], "date_done": "2024-05-01T12:00:01.234567", "task_id": "id"}`},
		{"progress", ResultMeta{Status: "PROGRESS", Result: map[string]any{"status": "processing", "progress": 50}, TaskID: "id"},
			`{"status": "PROGRESS", "result": {"progress":50,"status":"processing"}, "traceback": null, "children": [], "date_done": null, "task_id": "id"}`},
		{"failure group parent", ResultMeta{Status: StateFailure, Result: NewExceptionInfo("ValueError", "builtins", "boom"), Traceback: &tb,
			DateDone: &done, GroupID: "g", ParentID: "p", TaskID: "id"},
			`{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["boom"], "exc_module": "builtins"}, "traceback": "Traceback...\n", "children": [], "date_done": "2024-05-01T12:00:01.234567+00:00", "group_id": "g", "parent_id": "p", "task_id": "id"}`},
		{"null module", ResultMeta{Status: StateFailure, Result: NewExceptionInfo("GoError", ""), TaskID: "id"},
			`{"status": "FAILURE", "result": {"exc_type": "GoError", "exc_message": [], "exc_module": null}, "traceback": null, "children": [], "date_done": null, "task_id": "id"}`},
		{"extended", ResultMeta{Status: StateSuccess, TaskID: "id", Extended: map[string]any{"queue": "celery", "name": "t", "zz": 1, "args": []any{}}},
			`{"status": "SUCCESS", "result": null, "traceback": null, "children": [], "date_done": null, "name": "t", "args": [], "queue": "celery", "zz": 1, "task_id": "id"}`},
	}
	for _, tc := range tests {
		b, err := json.Marshal(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		// encoding/json compacts Marshaler output; compare compacted forms
		var want, got any
		_ = json.Unmarshal([]byte(tc.want), &want)
		_ = json.Unmarshal(b, &got)
		if mustJSON(t, want) != mustJSON(t, got) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
		direct, _ := tc.m.MarshalJSON()
		keys := keyOrder(t, direct)
		wantKeys := keyOrder(t, []byte(tc.want))
		if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
			t.Errorf("%s: key order %v, want %v", tc.name, keys, wantKeys)
		}
		if strings.Contains(string(direct), "2.0") != strings.Contains(tc.want, "2.0") {
			t.Errorf("%s: float formatting: %s", tc.name, direct)
		}
	}
}

func keyOrder(t *testing.T, b []byte) []string {
	o, err := parseObject(b)
	if err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return o.keys
}

// TestDecodeResultMetaGolden reads every meta the Python backend wrote.
func TestDecodeResultMetaGolden(t *testing.T) {
	for _, path := range fixtures(t, "results") {
		name := fixtureName(path)
		t.Run(name, func(t *testing.T) {
			raw := readFile(t, path)
			m, err := DecodeResultMeta(raw)
			if err != nil {
				t.Fatal(err)
			}
			if IsException(m.Status) && m.Result != nil && m.Exception() == nil {
				t.Errorf("exception state without *ExceptionInfo: %#v", m.Result)
			}
			if IsReady(m.Status) != (m.DateDone != nil) {
				t.Errorf("date_done %v for %s", m.DateDone, m.Status)
			}
			if m.DateDone != nil && !m.NaiveDateDone {
				t.Errorf("celery 5.2.6 writes naive date_done")
			}
			golden(t, "results/"+name, map[string]any{
				"Status": m.Status, "Result": m.Result, "Traceback": m.Traceback != nil, "Children": m.Children,
				"DateDone": m.DateDone != nil, "GroupID": m.GroupID, "ParentID": m.ParentID, "TaskID": m.TaskID,
				"Extended": m.Extended,
			})
			// re-encoding keeps the same information
			again, err := DecodeResultMeta(mustMarshal(t, m))
			if err != nil || again.Status != m.Status || mustJSON(t, again.Result) != mustJSON(t, m.Result) ||
				again.TaskID != m.TaskID || (m.DateDone != nil && !again.DateDone.Equal(*m.DateDone)) {
				t.Errorf("round trip: %+v, %v", again, err)
			}
		})
	}
}

func mustMarshal(t *testing.T, v json.Marshaler) []byte {
	b, err := v.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeResultMetaErrors(t *testing.T) {
	for _, bad := range []string{`[]`, `null`, `{"status": 1}`, `{"status": "SUCCESS", "date_done": "x"}`,
		`{"status": "SUCCESS", "children": 3}`, `{"traceback": 5}`, `{"date_done": 5}`} {
		if _, err := DecodeResultMeta([]byte(bad)); err == nil {
			t.Errorf("DecodeResultMeta(%s) succeeded", bad)
		}
	}
	m, err := DecodeResultMeta([]byte(`{"status": "FAILURE", "result": {"exc_type": "E", "exc_message": "single", "exc_module": null}}`))
	if err != nil || m.Exception() == nil || len(m.Exception().Message) != 1 || m.Exception().Module != "" {
		t.Errorf("%+v %v", m, err)
	}
	m, err = DecodeResultMeta([]byte(`{"status": "FAILURE", "result": {"not": "an exception"}, "date_done": "2024-05-01T12:00:00Z"}`))
	if err != nil || m.Exception() != nil || m.NaiveDateDone {
		t.Errorf("%+v %v", m, err)
	}
}
