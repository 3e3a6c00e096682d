package worker

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// The shared in-memory doubles (package workertest imports protocol only,
// so these internal tests can use them) satisfy the runtime's interfaces.
var (
	_ Broker        = (*workertest.Broker)(nil)
	_ ResultBackend = (*workertest.Backend)(nil)
)

type harness struct {
	w       *Worker
	broker  *workertest.Broker
	backend *workertest.Backend
	cancel  context.CancelFunc
	done    chan error
}

func start(t *testing.T, cfg Config, reg *Registry) *harness {
	t.Helper()
	if cfg.Queues == nil {
		cfg.Queues = []string{"q"}
	}
	if cfg.RestoreInterval == 0 {
		cfg.RestoreInterval = -1
	}
	if cfg.LeaseInterval == 0 {
		cfg.LeaseInterval = -1
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 20 * time.Millisecond
	}
	cfg.RetryPause = time.Millisecond
	h := &harness{broker: workertest.NewBroker(), backend: workertest.NewBackend(), done: make(chan error, 1)}
	w, err := New(cfg, h.broker, h.backend, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- w.Run(ctx) }()
	<-w.Ready()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- nil // idempotent for a second stop
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop")
	}
}

func (h *harness) send(t *testing.T, task string, args []any, kwargs map[string]any, edit ...func(*protocol.TaskMessage)) *protocol.TaskMessage {
	t.Helper()
	m := protocol.NewTaskMessage(task, args, kwargs)
	for _, e := range edit {
		e(m)
	}
	d := workertest.Delivery(t, m, "q")
	tagsMu.Lock()
	tagsByID[m.ID] = d.Tag
	tagsMu.Unlock()
	h.broker.Put(d)
	return m
}

func mustRegister(t *testing.T, reg *Registry, name string, h Handler, opts TaskOptions) {
	t.Helper()
	if err := reg.Register(name, h, opts); err != nil {
		t.Fatal(err)
	}
}

func TestSuccessFailureAndStates(t *testing.T) {
	reg := NewRegistry()
	mustRegister(t, reg, "t.add", func(_ context.Context, t *Task) (any, error) {
		a, err := t.IntArg("a")
		if err != nil {
			return nil, err
		}
		b, err := t.IntArg("b")
		if err != nil {
			return nil, err
		}
		return a + b, nil
	}, TaskOptions{Params: []string{"a", "b"}})
	mustRegister(t, reg, "t.fail", func(context.Context, *Task) (any, error) {
		return nil, errors.New("plain go error")
	}, TaskOptions{})
	mustRegister(t, reg, "t.panic", func(context.Context, *Task) (any, error) {
		var m map[string]int
		m["x"] = 1 //nolint:staticcheck // a deliberate nil-map panic
		return nil, nil
	}, TaskOptions{})
	mustRegister(t, reg, "t.progress", func(ctx context.Context, t *Task) (any, error) {
		return "done", t.UpdateState(ctx, "PROGRESS", map[string]any{"status": "half", "progress": 50})
	}, TaskOptions{})
	mustRegister(t, reg, "t.quiet", func(context.Context, *Task) (any, error) { return 1, nil }, TaskOptions{IgnoreResult: true})
	mustRegister(t, reg, "t.chan", func(context.Context, *Task) (any, error) { return make(chan int), nil }, TaskOptions{})
	h := start(t, Config{Concurrency: 2, Hostname: "omics@test", Pid: 42}, reg)

	tests := []struct {
		name, task string
		args       []any
		kwargs     map[string]any
		states     []string
		result     string // JSON of the final result
		traceback  string // substring of the traceback
	}{
		{"kwargs", "t.add", nil, map[string]any{"a": 2, "b": 3}, []string{"STARTED", "SUCCESS"}, "5", ""},
		{"args", "t.add", []any{2, 5}, nil, []string{"STARTED", "SUCCESS"}, "7", ""},
		{"both", "t.add", []any{1}, map[string]any{"b": 10}, []string{"STARTED", "SUCCESS"}, "11", ""},
		{"wrong type", "t.add", nil, map[string]any{"a": "abc", "b": 1}, []string{"STARTED", "FAILURE"},
			`{"exc_type":"TypeError","exc_message":["argument 'a' must be int, not str ('abc')"],"exc_module":"builtins"}`, "TypeError: argument 'a'"},
		{"missing", "t.add", nil, map[string]any{"a": 1}, []string{"STARTED", "FAILURE"},
			`{"exc_type":"TypeError","exc_message":["add() missing 1 required argument: 'b'"],"exc_module":"builtins"}`, ""},
		{"unexpected kwarg", "t.add", nil, map[string]any{"a": 1, "b": 2, "c": 3}, []string{"STARTED", "FAILURE"},
			`{"exc_type":"TypeError","exc_message":["add() got an unexpected keyword argument 'c'"],"exc_module":"builtins"}`, ""},
		{"go error", "t.fail", nil, nil, []string{"STARTED", "FAILURE"},
			`{"exc_type":"Exception","exc_message":["plain go error"],"exc_module":"builtins"}`, "Exception: plain go error"},
		{"panic", "t.panic", nil, nil, []string{"STARTED", "FAILURE"},
			`{"exc_type":"Exception","exc_message":["panic: assignment to entry in nil map"],"exc_module":"builtins"}`, "worker_test.go"},
		{"progress", "t.progress", nil, nil, []string{"STARTED", "PROGRESS", "SUCCESS"}, `"done"`, ""},
		{"ignore result", "t.quiet", nil, nil, nil, "", ""},
		{"unencodable", "t.chan", nil, nil, []string{"STARTED", "FAILURE"},
			`{"exc_type":"EncodeError","exc_message":["json: unsupported type: chan int"],"exc_module":"kombu.exceptions"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := h.send(t, tc.task, tc.args, tc.kwargs)
			if tc.states == nil {
				workertest.WaitUntil(t, "ack", func() bool {
					_, acked, _, _ := h.broker.Snapshot()
					return len(acked) > 0 && contains(acked, tagOf(h, m))
				})
				if s := h.backend.States(m.ID); len(s) != 0 {
					t.Fatalf("ignore_result task stored %v", s)
				}
				return
			}
			f := h.backend.WaitFinal(t, m.ID)
			if got := h.backend.States(m.ID); strings.Join(got, ",") != strings.Join(tc.states, ",") {
				t.Errorf("states %v, want %v", got, tc.states)
			}
			if got := workertest.ResultJSON(t, f); got != tc.result {
				t.Errorf("result %s, want %s", got, tc.result)
			}
			if f.DateDone == nil {
				t.Error("no date_done on a READY state")
			}
			if tc.traceback != "" && (f.Traceback == nil || !strings.Contains(*f.Traceback, tc.traceback)) {
				t.Errorf("traceback %v lacks %q", f.Traceback, tc.traceback)
			}
		})
	}
	// STARTED meta is {"pid", "hostname"}.
	for _, m := range h.backend.Metas() {
		if m.Status == "STARTED" {
			if got := resultJSONNoT(m); got != `{"hostname":"omics@test","pid":42}` {
				t.Errorf("STARTED meta %s", got)
			}
			break
		}
	}
	// Every message was acknowledged after its result (acks late).
	workertest.WaitUntil(t, "all acked", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == 0 })
}

var tagsMu sync.Mutex
var tagsByID = map[string]string{}

func tagOf(_ *harness, m *protocol.TaskMessage) string {
	tagsMu.Lock()
	defer tagsMu.Unlock()
	return tagsByID[m.ID]
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func resultJSONNoT(m *protocol.ResultMeta) string {
	b, _ := json.Marshal(m.Result)
	return string(b)
}

func TestPrefetchWindowBoundsHeldMessages(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		concurrency, multiplier int
		want                    int
	}{
		{"c1 m1", 1, 1, 1},
		{"c2 m1", 2, 1, 2},
		{"c2 m3", 2, 3, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var running atomic.Int32
			reg := NewRegistry()
			mustRegister(t, reg, "t.block", func(ctx context.Context, _ *Task) (any, error) {
				running.Add(1)
				<-release
				return nil, nil
			}, TaskOptions{})
			h := start(t, Config{Concurrency: tc.concurrency, PrefetchMultiplier: tc.multiplier}, reg)
			var ids []string
			for range 10 {
				ids = append(ids, h.send(t, "t.block", nil, nil).ID)
			}
			workertest.WaitUntil(t, "window full", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == tc.want })
			workertest.WaitUntil(t, "pool busy", func() bool { return int(running.Load()) == tc.concurrency })
			// The window stays full: no further fetch while nothing finished.
			time.Sleep(50 * time.Millisecond)
			if n, _, _, _ := h.broker.Snapshot(); n != tc.want {
				t.Fatalf("%d messages held, want %d", n, tc.want)
			}
			close(release)
			for _, id := range ids {
				h.backend.WaitFinal(t, id)
			}
			if held := h.broker.MaxHeld(); held > tc.want {
				t.Errorf("held up to %d messages, window is %d", held, tc.want)
			}
		})
	}
}

func TestETADoesNotBlockWindowAndRunsInOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	reg := NewRegistry()
	mustRegister(t, reg, "t.rec", func(_ context.Context, t *Task) (any, error) {
		mu.Lock()
		order = append(order, t.ID)
		mu.Unlock()
		return nil, nil
	}, TaskOptions{})
	h := start(t, Config{Concurrency: 1, PrefetchMultiplier: 1}, reg)

	// A far ETA holds its message but not the window of 1: later work runs.
	far := time.Now().Add(time.Hour)
	held := h.send(t, "t.rec", nil, nil, func(m *protocol.TaskMessage) { m.ETA = &far })
	plain := h.send(t, "t.rec", nil, nil)
	h.backend.WaitFinal(t, plain.ID)
	workertest.WaitUntil(t, "only the ETA message held", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == 1 })

	// ETA tasks run at their ETA, in ETA order.
	now := time.Now()
	eta2, eta1 := now.Add(600*time.Millisecond), now.Add(300*time.Millisecond)
	late := h.send(t, "t.rec", nil, nil, func(m *protocol.TaskMessage) { m.ETA = &eta2 })
	early := h.send(t, "t.rec", nil, nil, func(m *protocol.TaskMessage) { m.ETA = &eta1 })
	for _, m := range []*protocol.TaskMessage{late, early} {
		h.backend.WaitFinal(t, m.ID)
	}
	mu.Lock()
	want := []string{plain.ID, early.ID, late.ID}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("ran %v, want plain, early ETA, late ETA %v", order, want)
	}
	mu.Unlock()
	for _, c := range []struct {
		m   *protocol.TaskMessage
		eta time.Time
	}{{early, eta1}, {late, eta2}} {
		if f := h.backend.Final(c.m.ID); f.DateDone.Before(c.eta) {
			t.Errorf("task ran at %v, before its ETA %v", f.DateDone, c.eta)
		}
	}
	// Shutdown restores the far-ETA message.
	h.stop(t)
	if _, _, restored, _ := h.broker.Snapshot(); len(restored) != 1 || restored[0] != tagOf(h, held) {
		t.Fatalf("restored %v", restored)
	}
}

func TestExpiredIsRevoked(t *testing.T) {
	reg := NewRegistry()
	ran := make(chan struct{}, 1)
	mustRegister(t, reg, "t.x", func(context.Context, *Task) (any, error) { ran <- struct{}{}; return nil, nil }, TaskOptions{})
	h := start(t, Config{Concurrency: 1}, reg)
	past := time.Now().Add(-time.Minute)
	m := h.send(t, "t.x", nil, nil, func(m *protocol.TaskMessage) { m.Expires = &past })
	f := h.backend.WaitFinal(t, m.ID)
	if f.Status != "REVOKED" || workertest.ResultJSON(t, f) != `{"exc_type":"TaskRevokedError","exc_message":["expired"],"exc_module":"celery.exceptions"}` {
		t.Fatalf("got %s %s", f.Status, workertest.ResultJSON(t, f))
	}
	select {
	case <-ran:
		t.Fatal("expired task ran")
	default:
	}
}

func TestTimeLimits(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	reg := NewRegistry()
	mustRegister(t, reg, "t.coop", func(ctx context.Context, _ *Task) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}, TaskOptions{})
	mustRegister(t, reg, "t.stubborn", func(ctx context.Context, _ *Task) (any, error) {
		<-block // ignores ctx
		return nil, nil
	}, TaskOptions{})
	mustRegister(t, reg, "t.catch", func(ctx context.Context, _ *Task) (any, error) {
		<-ctx.Done()
		return "cleaned up", nil // catches SoftTimeLimitExceeded
	}, TaskOptions{SoftTimeLimit: 50 * time.Millisecond})
	mustRegister(t, reg, "t.ok", func(context.Context, *Task) (any, error) { return "ok", nil }, TaskOptions{})
	h := start(t, Config{Concurrency: 1}, reg)
	f64 := func(f float64) *float64 { return &f }

	soft := h.send(t, "t.coop", nil, nil, func(m *protocol.TaskMessage) { m.TimeLimit = [2]*float64{nil, f64(0.05)} })
	if f := h.backend.WaitFinal(t, soft.ID); workertest.ResultJSON(t, f) != `{"exc_type":"SoftTimeLimitExceeded","exc_message":[],"exc_module":"billiard.exceptions"}` {
		t.Errorf("soft: %s", workertest.ResultJSON(t, f))
	}
	caught := h.send(t, "t.catch", nil, nil)
	if f := h.backend.WaitFinal(t, caught.ID); f.Status != "SUCCESS" {
		t.Errorf("caught soft limit: %s", f.Status)
	}
	hard := h.send(t, "t.stubborn", nil, nil, func(m *protocol.TaskMessage) { m.TimeLimit = [2]*float64{f64(0.1), nil} })
	if f := h.backend.WaitFinal(t, hard.ID); workertest.ResultJSON(t, f) != `{"exc_type":"TimeLimitExceeded","exc_message":[0.1],"exc_module":"billiard.exceptions"}` {
		t.Errorf("hard: %s", workertest.ResultJSON(t, f))
	}
	// The slot was freed although the stubborn handler still runs.
	next := h.send(t, "t.ok", nil, nil)
	if f := h.backend.WaitFinal(t, next.ID); f.Status != "SUCCESS" {
		t.Errorf("after hard limit: %s", f.Status)
	}
}

func TestUnknownTaskAndForward(t *testing.T) {
	h := start(t, Config{Concurrency: 1}, NewRegistry())
	m := h.send(t, "nope.task", []any{1}, nil)
	f := h.backend.WaitFinal(t, m.ID)
	if workertest.ResultJSON(t, f) != `{"exc_type":"NotRegistered","exc_message":["nope.task"],"exc_module":"celery.exceptions"}` {
		t.Fatalf("got %s", workertest.ResultJSON(t, f))
	}
	workertest.WaitUntil(t, "reject", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == 0 })

	h2 := start(t, Config{Concurrency: 1, ForwardUnknown: "python_q"}, NewRegistry())
	d := workertest.Delivery(t, protocol.NewTaskMessage("py.task", nil, nil), "q")
	h2.broker.Put(d)
	workertest.WaitUntil(t, "forward", func() bool { _, acked, _, pub := h2.broker.Snapshot(); return len(pub) == 1 && len(acked) == 1 })
	_, _, _, pub := h2.broker.Snapshot()
	if pub[0].Queue != "python_q" || string(pub[0].Raw) != string(d.Raw) {
		t.Fatalf("forwarded to %s: %s", pub[0].Queue, pub[0].Raw)
	}
}

func TestBadMessages(t *testing.T) {
	h := start(t, Config{Concurrency: 1}, NewRegistry())
	// pickle content type: refused, FAILURE ContentDisallowed.
	d := workertest.Delivery(t, protocol.NewTaskMessage("t.x", nil, nil), "q")
	d.Envelope.ContentType = "application/x-python-serialize"
	id, _ := protocol.PeekTaskID(d.Envelope)
	h.broker.Put(d)
	f := h.backend.WaitFinal(t, id)
	info := f.Result.(*protocol.ExceptionInfo)
	if info.Type != "ContentDisallowed" || info.Module != "kombu.exceptions" || !strings.Contains(info.Message[0].(string), "pickle") {
		t.Fatalf("got %+v", info)
	}
	// An envelope that did not decode: deleted without a result.
	h.broker.Put(&protocol.Delivery{Queue: "q", Tag: "bad-1", Raw: []byte("not json"), DecodeErr: errors.New("bad")})
	workertest.WaitUntil(t, "ack of undecodable", func() bool { _, acked, _, _ := h.broker.Snapshot(); return contains(acked, "bad-1") })
}

func TestEarlyAck(t *testing.T) {
	reg := NewRegistry()
	seen := make(chan int, 1)
	var h *harness
	mustRegister(t, reg, "t.x", func(context.Context, *Task) (any, error) {
		n, _, _, _ := h.broker.Snapshot()
		seen <- n
		return nil, nil
	}, TaskOptions{})
	h = start(t, Config{Concurrency: 1, AcksEarly: true}, reg)
	m := h.send(t, "t.x", nil, nil)
	h.backend.WaitFinal(t, m.ID)
	if n := <-seen; n != 0 {
		t.Fatalf("%d unacked messages while the task ran with early ack", n)
	}
}

func TestRetryRepublishes(t *testing.T) {
	reg := NewRegistry()
	mustRegister(t, reg, "t.flaky", func(context.Context, *Task) (any, error) {
		return nil, Retry(NewPyError("ConnectionError", "refused"), 5*time.Second)
	}, TaskOptions{MaxRetries: 2})
	h := start(t, Config{Concurrency: 1}, reg)
	exp := time.Now().Add(time.Hour)
	sent := time.Now()
	m := h.send(t, "t.flaky", []any{1}, map[string]any{"k": "v"}, func(m *protocol.TaskMessage) {
		m.Expires = &exp
		m.ExpiresRaw = "2099-01-01T00:00:00+00:00"
	})
	f := h.backend.WaitFinal(t, m.ID)
	if f.Status != "RETRY" || workertest.ResultJSON(t, f) != `{"exc_type":"ConnectionError","exc_message":["refused"],"exc_module":"builtins"}` {
		t.Fatalf("got %s %s", f.Status, workertest.ResultJSON(t, f))
	}
	if !strings.Contains(*f.Traceback, "Retry in 5s") {
		t.Errorf("traceback %q", *f.Traceback)
	}
	_, _, _, pub := h.broker.Snapshot()
	if len(pub) != 1 || pub[0].Queue != "q" {
		t.Fatalf("published %v", pub)
	}
	env, err := protocol.DecodeEnvelope(pub[0].Raw)
	if err != nil {
		t.Fatal(err)
	}
	re, err := protocol.DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	if re.ID != m.ID || re.Retries != 1 || re.ETA == nil || re.ExpiresRaw != "2099-01-01T00:00:00+00:00" || re.ParentID != m.ID {
		t.Errorf("retry message: id %s retries %d eta %v expires %q parent %q", re.ID, re.Retries, re.ETA, re.ExpiresRaw, re.ParentID)
	}
	// The ETA is computed between the send and now: bounds that hold
	// however slowly a loaded machine got here (the ISO form keeps µs).
	if lo, hi := sent.Add(5*time.Second-time.Millisecond), time.Now().Add(5*time.Second); re.ETA.Before(lo) || re.ETA.After(hi) {
		t.Errorf("eta %v, want send + 5 s, within [%v, %v]", *re.ETA, lo, hi)
	}
	if env.Properties.DeliveryTag == "" || env.Properties.DeliveryTag == tagOf(h, m) {
		t.Error("retry needs a new delivery tag")
	}
	// At max retries the error becomes the FAILURE.
	m2 := h.send(t, "t.flaky", nil, nil, func(m *protocol.TaskMessage) { m.Retries = 2 })
	if f := h.backend.WaitFinal(t, m2.ID); f.Status != "FAILURE" || f.Result.(*protocol.ExceptionInfo).Type != "ConnectionError" {
		t.Fatalf("max retries: %s %s", f.Status, workertest.ResultJSON(t, f))
	}
}

func TestWarmShutdownRestoresUnstarted(t *testing.T) {
	release := make(chan struct{})
	started := make(chan string, 10)
	reg := NewRegistry()
	mustRegister(t, reg, "t.block", func(_ context.Context, t *Task) (any, error) {
		started <- t.ID
		<-release
		return "finished", nil
	}, TaskOptions{})
	h := start(t, Config{Concurrency: 1, PrefetchMultiplier: 3}, reg)
	future := time.Now().Add(time.Hour)
	first := h.send(t, "t.block", nil, nil)
	h.send(t, "t.block", nil, nil)
	h.send(t, "t.block", nil, nil, func(m *protocol.TaskMessage) { m.ETA = &future })
	h.send(t, "t.block", nil, nil)
	if id := <-started; id != first.ID {
		t.Fatalf("started %s first", id)
	}
	workertest.WaitUntil(t, "all held", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == 4 })
	h.cancel() // warm shutdown
	workertest.WaitUntil(t, "restores", func() bool { _, _, r, _ := h.broker.Snapshot(); return len(r) == 3 })
	close(release)
	h.stop(t)
	if f := h.backend.Final(first.ID); f == nil || f.Status != "SUCCESS" {
		t.Fatalf("running task not finished: %v", f)
	}
	n, _, restored, _ := h.broker.Snapshot()
	if n != 0 || len(restored) != 3 {
		t.Fatalf("unacked %d, restored %d", n, len(restored))
	}
}

func TestColdShutdownRestoresRunning(t *testing.T) {
	started := make(chan struct{}, 1)
	reg := NewRegistry()
	mustRegister(t, reg, "t.long", func(ctx context.Context, _ *Task) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}, TaskOptions{})
	h := start(t, Config{Concurrency: 1}, reg)
	m := h.send(t, "t.long", nil, nil)
	<-started
	h.cancel()
	h.w.ColdShutdown()
	h.stop(t)
	_, _, restored, _ := h.broker.Snapshot()
	if len(restored) != 1 {
		t.Fatalf("restored %v", restored)
	}
	if f := h.backend.Final(m.ID); f != nil {
		t.Fatalf("cancelled task stored %s", f.Status)
	}
}

func TestLeasesAndRestoreLoop(t *testing.T) {
	release := make(chan struct{})
	reg := NewRegistry()
	mustRegister(t, reg, "t.block", func(context.Context, *Task) (any, error) { <-release; return nil, nil }, TaskOptions{})
	defer close(release)
	h := start(t, Config{Concurrency: 1, PrefetchMultiplier: 2, LeaseInterval: 10 * time.Millisecond, RestoreInterval: 10 * time.Millisecond}, reg)
	future := time.Now().Add(time.Hour)
	h.send(t, "t.block", nil, nil)
	h.send(t, "t.block", nil, nil, func(m *protocol.TaskMessage) { m.ETA = &future })
	workertest.WaitUntil(t, "both held", func() bool { n, _, _, _ := h.broker.Snapshot(); return n == 2 })
	workertest.WaitUntil(t, "touch of running and ETA messages", func() bool {
		for _, n := range h.broker.UnackedTouches() {
			if n < 2 {
				return false
			}
		}
		return h.broker.RestoreVisibleCalls() >= 2
	})
}
