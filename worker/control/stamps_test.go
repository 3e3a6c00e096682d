package control

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// TestRevokeByStampedHeaders: replies as celery 5.5.2's
// revoke_by_stamped_headers (texts taken from the Python function run in
// the celery 5.5 root), revoked stamps accumulated like
// worker_state.revoked_stamps.
func TestRevokeByStampedHeaders(t *testing.T) {
	s, w, _, _, _ := newTestServer(t)
	for _, tc := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"headers": []any{"mtask_id=m1", "tag=a=b", "mtask_id=m2"}},
			`{"ok":"headers {'mtask_id': 'm2', 'tag': 'a'} flagged as revoked, but not terminated"}`},
		{map[string]any{"headers": map[string]any{"mtask_id": []any{"m1", "m9"}}, "terminate": true},
			`{"ok":"headers {'mtask_id': ['m1', 'm9']} were not terminated"}`},
		{map[string]any{"headers": map[string]any{"mtask_id": "m1"}, "terminate": true, "signal": "KILL"},
			`{"ok":"headers {'mtask_id': 'm1'} were not terminated"}`},
		{map[string]any{"headers": []any{json.Number("1")}}, `{"error":"AttributeError(\"'int' object has no attribute 'split'\")"}`},
		{map[string]any{"headers": []any{"x"}}, `{"error":"IndexError('list index out of range')"}`},
		{map[string]any{"headers": "s"}, `{"error":"AttributeError(\"'str' object has no attribute 'items'\")"}`},
		{map[string]any{"headers": map[string]any{"a": "b"}, "signal": "BOGUS"}, `{"error":"AttributeError(\"module 'signal' has no attribute 'SIGBOGUS'\")"}`},
		{map[string]any{"headers": map[string]any{"a": "b"}, "signal": "kill"}, `{"error":"TypeError('signal name must be uppercase string.')"}`},
		{nil, `{"error":"TypeError(\"revoke_by_stamped_headers() missing 1 required positional argument: 'headers'\")"}`},
	} {
		if got := call(t, s, "revoke_by_stamped_headers", tc.args); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.args, got, tc.want)
		}
	}
	want := []worker.Stamp{{Name: "mtask_id", Value: []any{"m2", "m1", "m9", "m1"}}, {Name: "tag", Value: []any{"a"}}}
	if got := w.RevokedStamps().Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("revoked stamps %v, want %v", got, want)
	}
}

func TestReprStampSets(t *testing.T) {
	got := reprStampSets([]worker.Stamp{{Name: "mtask_id", Value: []any{"m1"}}, {Name: "n", Value: []any{json.Number("1"), "x"}}})
	if want := `defaultdict(<class 'set'>, {'mtask_id': {'m1'}, 'n': {1, 'x'}})`; got != want {
		t.Errorf("got %s", got)
	}
}

// TestSignum: celery.platforms.signals.signum, the same in 5.2 and 5.5.
func TestSignum(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{nil, "15"}, {"TERM", "15"}, {"SIGKILL", "9"}, {json.Number("9"), "9"},
		{"9", "TypeError('signal name must be uppercase string.')"},
		{"kill", "TypeError('signal name must be uppercase string.')"},
		{"BOGUS", `AttributeError("module 'signal' has no attribute 'SIGBOGUS'")`},
	} {
		n, err := signum(tc.in)
		var got string
		var pe *pyExc
		if errors.As(err, &pe) {
			got = pe.repr()
		} else {
			got = strconv.Itoa(n)
		}
		if got != tc.want {
			t.Errorf("signum(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// TestConfWithDefaults: with_defaults=True answers every celery 5.5
// setting (the worker's values win), as the Python worker; before issue
// 11 the argument was ignored.
func TestConfWithDefaults(t *testing.T) {
	s, _, _, _, _ := newTestServer(t)
	v, _ := s.Handle(context.Background(), &protocol.ControlRequest{Method: "conf", Arguments: map[string]any{"with_defaults": true}})
	m := v.(map[string]any)
	if len(m) < 150 || m["broker_url"] != "redis://x" || m["task_serializer"] != "json" || m["worker_prefetch_multiplier"] != json.Number("4") {
		t.Errorf("with_defaults: %d keys, broker_url %v task_serializer %v prefetch %v", len(m), m["broker_url"], m["task_serializer"], m["worker_prefetch_multiplier"])
	}
	env, err := protocol.EncodeControlReply("go@test", "t", protocol.ReplyTo{Exchange: "reply.celery.pidbox", RoutingKey: "k"}, m, 1)
	if err != nil || !strings.Contains(string(env), "1e999") && !strings.Contains(string(env), "body") {
		t.Errorf("encoding the reply: %v", err)
	}
	if got := call(t, s, "conf", map[string]any{"with_defaults": false}); got != `{"broker_url":"redis://x"}` {
		t.Errorf("without: %s", got)
	}
	// the embedded table is not changed by a reply
	m["task_serializer"] = "x"
	if defaultConf()["task_serializer"] != "json" {
		t.Error("defaults mutated")
	}
}

func TestReprStamps(t *testing.T) {
	for _, tc := range []struct {
		in   []worker.Stamp
		want string
	}{
		{nil, `{}`},
		{[]worker.Stamp{{Name: "a", Value: "x"}, {Name: "b", Value: []any{json.Number("1"), "y"}}}, `{'a': 'x', 'b': [1, 'y']}`},
	} {
		if got := reprStamps(tc.in); got != tc.want {
			t.Errorf("reprStamps(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got, want := reprStampSets(nil), `defaultdict(<class 'set'>, {})`; got != want {
		t.Errorf("reprStampSets(nil) = %s, want %s", got, want)
	}
}
