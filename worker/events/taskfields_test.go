package events

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// TestTaskFields: the Celery fields of every task event type, as a Python
// worker sends them (moved here from the runtime, issue 10 #2).
func TestTaskFields(t *testing.T) {
	eta := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	msg := &protocol.TaskMessage{ID: "id1", Task: "t.x", ArgsRepr: "(1,)", KwargsRepr: "{}",
		RootID: "root", Retries: 2, ETA: &eta}
	tb := "Traceback (most recent call last):\nValueError: bad"
	failure := &protocol.ResultMeta{Status: protocol.StateFailure, Traceback: &tb,
		Result: &protocol.ExceptionInfo{Type: "ValueError", Module: "builtins", Message: []any{"bad"}}}
	revoked := func(reason string) *protocol.ResultMeta {
		return &protocol.ResultMeta{Status: protocol.StateRevoked,
			Result: &protocol.ExceptionInfo{Type: "TaskRevokedError", Module: "celery.exceptions", Message: []any{reason}}}
	}
	for _, tc := range []struct {
		name string
		ev   worker.TaskEvent
		want map[string]any
	}{
		{"received", worker.TaskEvent{Type: worker.EventTaskReceived, ID: "id1", Name: "shadow", Message: msg},
			map[string]any{"uuid": "id1", "name": "shadow", "args": "(1,)", "kwargs": "{}", "root_id": "root",
				"parent_id": nil, "retries": 2, "eta": "2024-05-06T07:08:09.123456+00:00", "expires": nil}},
		{"started", worker.TaskEvent{Type: worker.EventTaskStarted, ID: "id1", Message: msg},
			map[string]any{"uuid": "id1"}},
		{"succeeded stored", worker.TaskEvent{Type: worker.EventTaskSucceeded, ID: "id1", Runtime: 1500 * time.Millisecond,
			Meta: &protocol.ResultMeta{Status: protocol.StateSuccess, Result: json.RawMessage(`{"a": [1, 2.0, "x", null, true]}`)}},
			map[string]any{"uuid": "id1", "result": "{'a': [1, 2.0, 'x', None, True]}", "runtime": protocol.Float(1.5)}},
		{"succeeded ignore_result", worker.TaskEvent{Type: worker.EventTaskSucceeded, ID: "id1", Result: map[string]any{"n": 1.0}},
			map[string]any{"uuid": "id1", "result": "{'n': 1}", "runtime": protocol.Float(0)}},
		{"failed stored", worker.TaskEvent{Type: worker.EventTaskFailed, ID: "id1", Meta: failure, Ran: true, Err: errors.New("other")},
			map[string]any{"uuid": "id1", "exception": "ValueError('bad')", "traceback": tb}},
		{"failed ignore_result", worker.TaskEvent{Type: worker.EventTaskFailed, ID: "id1", Ran: true, Err: errors.New("boom")},
			map[string]any{"uuid": "id1", "exception": "Exception('boom')", "traceback": ""}},
		{"failed before running", worker.TaskEvent{Type: worker.EventTaskFailed, ID: "id1", Meta: failure},
			map[string]any{"uuid": "id1", "exception": "ValueError('bad')"}},
		{"retried", worker.TaskEvent{Type: worker.EventTaskRetried, ID: "id1", Meta: failure},
			map[string]any{"uuid": "id1", "exception": "ValueError('bad')", "traceback": tb}},
		{"revoked", worker.TaskEvent{Type: worker.EventTaskRevoked, ID: "id1", Meta: revoked("revoked"), Signum: 9},
			map[string]any{"uuid": "id1", "terminated": false, "signum": nil, "expired": false}},
		{"revoked expired", worker.TaskEvent{Type: worker.EventTaskRevoked, ID: "id1", Meta: revoked("expired"), Expired: true},
			map[string]any{"uuid": "id1", "terminated": false, "signum": nil, "expired": true}},
		{"terminated", worker.TaskEvent{Type: worker.EventTaskRevoked, ID: "id1", Terminated: true, Signum: 15},
			map[string]any{"uuid": "id1", "terminated": true, "signum": 15, "expired": false}},
		{"unknown type", worker.TaskEvent{Type: "task-weird", ID: "id1"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TaskFields(tc.ev); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("TaskFields:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// Issue 10 #2: with task events disabled (no -E, no enable_events), a
// task event costs the dispatcher nothing: no fields, no repr of the
// result.
func TestObserveTaskDisabledDoesNoWork(t *testing.T) {
	d := New(Config{}, &src{}, &pub{})
	ev := worker.TaskEvent{Type: worker.EventTaskSucceeded, ID: "x", Runtime: time.Second,
		Meta: &protocol.ResultMeta{Status: protocol.StateSuccess, Result: json.RawMessage(`{"rows": 123, "stats": [1, 2, 3]}`)}}
	if n := testing.AllocsPerRun(100, func() { d.ObserveTask(ev) }); n != 0 {
		t.Fatalf("ObserveTask with task events off allocates %v times; want 0", n)
	}
	if len(d.queue) != 0 {
		t.Fatal("event queued while task events are off")
	}
}

// TestTaskRejectedFields: celery's Request.reject sends task-rejected
// with uuid and requeue only.
func TestTaskRejectedFields(t *testing.T) {
	for _, rq := range []bool{true, false} {
		f := TaskFields(worker.TaskEvent{Type: worker.EventTaskRejected, ID: "id1", Requeue: rq})
		if len(f) != 2 || f["uuid"] != "id1" || f["requeue"] != rq {
			t.Errorf("requeue %v: %v", rq, f)
		}
	}
}
