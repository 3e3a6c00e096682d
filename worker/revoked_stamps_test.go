package worker

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// stamped stamps a message as a celery 5.5 client does after
// sig.stamp(mtask_id=...).
func stamped(stamps string) func(*protocol.TaskMessage) {
	return func(m *protocol.TaskMessage) {
		var s map[string]any
		d := json.NewDecoder(strings.NewReader(stamps))
		d.UseNumber()
		_ = d.Decode(&s)
		names := make([]any, 0, len(s))
		for k := range s {
			names = append(names, k)
		}
		hn, _ := json.Marshal(names)
		m.Stamps = s
		m.Headers = map[string]json.RawMessage{"stamped_headers": hn}
	}
}

func TestRevokeByStampedHeaders(t *testing.T) {
	started := make(chan string, 10)
	reg := NewRegistry()
	mustRegister(t, reg, "t.block", func(ctx context.Context, tk *Task) (any, error) {
		started <- tk.ID
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}, TaskOptions{})
	mustRegister(t, reg, "t.ok", func(context.Context, *Task) (any, error) { return "ok", nil }, TaskOptions{})
	h := start(t, Config{Concurrency: 1, PrefetchMultiplier: 3}, reg)

	running := h.send(t, "t.block", nil, nil, stamped(`{"mtask_id": "m1"}`))
	<-started
	reserved := h.send(t, "t.ok", nil, nil, stamped(`{"mtask_id": ["x", "m1"]}`))
	other := h.send(t, "t.ok", nil, nil, stamped(`{"mtask_id": "m2"}`))
	workertest.WaitUntil(t, "two reserved", func() bool { _, r, _ := h.w.Requests(); return len(r) == 2 })

	got := h.w.RevokeStamps([]Stamp{{"mtask_id", []any{"m1", "m9"}}}, true, 9)
	if want := []Stamp{{"mtask_id", []any{"m1"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("terminated mapping %v, want %v (only running tasks)", got, want)
	}
	f := h.backend.WaitFinal(t, running.ID)
	if f.Status != protocol.StateRevoked || resultJSONNoT(f) != `{"exc_type":"TaskRevokedError","exc_message":["terminated"],"exc_module":"celery.exceptions"}` {
		t.Errorf("running: %s %s", f.Status, resultJSONNoT(f))
	}
	if f := h.backend.WaitFinal(t, reserved.ID); f.Status != protocol.StateRevoked || resultJSONNoT(f) != `{"exc_type":"TaskRevokedError","exc_message":["revoked"],"exc_module":"celery.exceptions"}` {
		t.Errorf("reserved (list stamp): %s %s", f.Status, resultJSONNoT(f))
	}
	if f := h.backend.WaitFinal(t, other.ID); f.Status != protocol.StateSuccess {
		t.Errorf("unmatched stamp: %s", f.Status)
	}
	// Later messages with the stamp are discarded at receipt; the task
	// ids are not added to the revoked ids.
	later := h.send(t, "t.ok", nil, nil, stamped(`{"mtask_id": "m9"}`))
	if f := h.backend.WaitFinal(t, later.ID); f.Status != protocol.StateRevoked {
		t.Errorf("later: %s", f.Status)
	}
	if ids := h.w.Revoked().IDs(); len(ids) != 0 {
		t.Errorf("revoked ids %v", ids)
	}
	if snap := h.w.RevokedStamps().Snapshot(); !reflect.DeepEqual(snap, []Stamp{{"mtask_id", []any{"m1", "m9"}}}) {
		t.Errorf("revoked stamps %v", snap)
	}
	// Without terminate nothing running is touched and nothing is returned.
	if got := h.w.RevokeStamps([]Stamp{{"tag", "z"}}, false, 15); got != nil {
		t.Errorf("no terminate: %v", got)
	}
}

func TestRevokedStampsAdd(t *testing.T) {
	var r RevokedStamps
	r.Add([]Stamp{{"a", "1"}, {"b", []any{"x", "y"}}})
	r.Add([]Stamp{{"a", []any{"2"}}})
	want := []Stamp{{"a", []any{"1", "2"}}, {"b", []any{"x", "y"}}}
	if got := r.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("%v", got)
	}
}

func TestRetryKeepsStamps(t *testing.T) {
	reg := NewRegistry()
	mustRegister(t, reg, "t.flaky", func(context.Context, *Task) (any, error) {
		return nil, Retry(nil, time.Hour)
	}, TaskOptions{MaxRetries: 2})
	h := start(t, Config{Concurrency: 1}, reg)
	m := h.send(t, "t.flaky", nil, nil, stamped(`{"mtask_id": "m1"}`))
	h.backend.WaitFinal(t, m.ID)
	_, _, _, pub := h.broker.Snapshot()
	if len(pub) != 1 {
		t.Fatalf("published %v", pub)
	}
	env, _ := protocol.DecodeEnvelope(pub[0].Raw)
	re, err := protocol.DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.StampValues(); !reflect.DeepEqual(got, map[string]any{"mtask_id": "m1"}) {
		t.Errorf("retry stamps %v (headers %s %s)", got, env.Headers["stamped_headers"], env.Headers["stamps"])
	}
}
