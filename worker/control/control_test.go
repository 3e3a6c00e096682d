package control

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// recMailbox records replies and bindings.
type recMailbox struct {
	mu       sync.Mutex
	replies  [][]byte
	bindings []string
	pub      [][]byte
}

func (m *recMailbox) SubscribePayloads(context.Context, string) (<-chan []byte, error) {
	return make(chan []byte), nil
}
func (m *recMailbox) PublishFanout(_ context.Context, _ string, p []byte) error {
	m.mu.Lock()
	m.pub = append(m.pub, p)
	m.mu.Unlock()
	return nil
}
func (m *recMailbox) Reply(_ context.Context, _, _ string, env []byte) error {
	m.mu.Lock()
	m.replies = append(m.replies, env)
	m.mu.Unlock()
	return nil
}
func (m *recMailbox) AddBinding(_ context.Context, ex, member string) error {
	m.mu.Lock()
	m.bindings = append(m.bindings, ex+"|"+member)
	m.mu.Unlock()
	return nil
}
func (m *recMailbox) RemoveBinding(context.Context, string, string) error { return nil }
func (m *recMailbox) PopReply(context.Context, string, time.Duration) ([]byte, error) {
	return nil, nil
}
func (m *recMailbox) DeleteQueue(context.Context, string) error { return nil }

type fakeEvents struct{ task, beats int }

func (e *fakeEvents) EnableTaskEvents() bool {
	if e.task == 0 {
		e.task = 1
		return true
	}
	return false
}
func (e *fakeEvents) DisableTaskEvents() bool {
	if e.task == 1 {
		e.task = 0
		return true
	}
	return false
}
func (e *fakeEvents) HeartbeatNow() { e.beats++ }

func newTestServer(t *testing.T) (*Server, *worker.Worker, *recMailbox, *fakeEvents, *bool) {
	t.Helper()
	reg := worker.NewRegistry()
	for _, n := range []string{"proj.add", "proj.mul"} {
		if err := reg.Register(n, func(context.Context, *worker.Task) (any, error) { return nil, nil }, worker.TaskOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A real *worker.Worker on the in-memory doubles: handlers only touch
	// its in-memory state.
	w, err := worker.New(worker.Config{Hostname: "go@test", Queues: []string{"q1"}, Concurrency: 3, Pid: 4242},
		workertest.NewBroker(), workertest.NewBackend(), reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	mb := &recMailbox{}
	ev := &fakeEvents{}
	shut := false
	s := NewServer(Config{Names: protocol.DefaultNames(0), Conf: map[string]any{"broker_url": "redis://x"},
		Report: "software -> omics-worker", Shutdown: func() { shut = true },
		BrokerInfo: map[string]any{"transport": "redis"}}, w, mb, ev)
	return s, w, mb, ev, &shut
}

func call(t *testing.T, s *Server, method string, args map[string]any) string {
	t.Helper()
	v, reply := s.Handle(context.Background(), &protocol.ControlRequest{Method: method, Arguments: args})
	if !reply {
		return "<no reply>"
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlers(t *testing.T) {
	s, w, _, ev, shut := newTestServer(t)
	for _, tc := range []struct {
		method string
		args   map[string]any
		want   string
	}{
		{"ping", nil, `{"ok":"pong"}`},
		{"foo", nil, `{"error":"KeyError('foo')"}`},
		{"conf", nil, `{"broker_url":"redis://x"}`},
		{"dump_conf", map[string]any{"with_defaults": false}, `{"broker_url":"redis://x"}`},
		{"report", nil, `{"ok":"software -\u003e omics-worker"}`},
		{"revoked", nil, `[]`},
		{"revoke", map[string]any{"task_id": []any{"a", "b", "a"}}, `{"ok":"tasks a, b flagged as revoked"}`},
		{"revoke", map[string]any{"task_id": "c", "terminate": true, "signal": "KILL"}, `{"ok":"terminate: tasks unknown"}`},
		{"terminate", map[string]any{"task_id": []any{"d"}, "signal": "SIGTERM"}, `{"ok":"terminate: tasks unknown"}`},
		{"terminate", map[string]any{"task_id": []any{"d"}, "signal": "BOGUS"}, `{"error":"AttributeError(\"module 'signal' has no attribute 'SIGBOGUS'\")"}`},
		{"revoke", nil, `{"error":"TypeError(\"revoke() missing 1 required positional argument: 'task_id'\")"}`},
		{"terminate", nil, `{"error":"TypeError(\"terminate() missing 2 required positional arguments: 'signal' and 'task_id'\")"}`},
		{"revoked", nil, `["a","b","c","d"]`},
		{"registered", nil, `["proj.add","proj.mul"]`},
		{"rate_limit", map[string]any{"task_name": "proj.add", "rate_limit": "10/m"}, `{"ok":"new rate limit set successfully"}`},
		{"registered", map[string]any{"taskinfoitems": []any{}}, `["proj.add [rate_limit=10/m]","proj.mul"]`},
		{"rate_limit", map[string]any{"task_name": "proj.add", "rate_limit": nil}, `{"ok":"rate limit disabled successfully"}`},
		{"rate_limit", map[string]any{"task_name": "proj.mul", "rate_limit": "0"}, `{"ok":"new rate limit set successfully"}`},
		{"rate_limit", map[string]any{"task_name": "nope", "rate_limit": "1/s"}, `{"error":"unknown task"}`},
		{"rate_limit", map[string]any{"task_name": "proj.add", "rate_limit": "x/s"}, `{"error":"Invalid rate limit string: ValueError(\"could not convert string to float: 'x'\")"}`},
		{"rate_limit", map[string]any{"task_name": "proj.add", "rate_limit": "1/d"}, `{"error":"KeyError('d')"}`},
		{"time_limit", map[string]any{"task_name": "proj.mul", "soft": json.Number("10"), "hard": json.Number("20.5")}, `{"ok":"time limits set successfully"}`},
		{"registered", map[string]any{"taskinfoitems": []any{"time_limit", "soft_time_limit"}}, `["proj.add","proj.mul [time_limit=20.5 soft_time_limit=10.0]"]`},
		{"time_limit", map[string]any{"task_name": "nope"}, `{"error":"unknown task"}`},
		{"active_queues", nil, `[{"alias":null,"auto_delete":false,"binding_arguments":null,"bindings":[],"consumer_arguments":null,"durable":true,"exchange":{"arguments":null,"auto_delete":false,"delivery_mode":null,"durable":true,"name":"q1","no_declare":false,"passive":false,"type":"direct"},"exclusive":false,"expires":null,"max_length":null,"max_length_bytes":null,"max_priority":null,"message_ttl":null,"name":"q1","no_ack":false,"no_declare":null,"queue_arguments":null,"routing_key":"q1"}]`},
		{"active_queues", map[string]any{"x": 1}, `{"error":"TypeError(\"active_queues() got an unexpected keyword argument 'x'\")"}`},
		{"add_consumer", map[string]any{"queue": "q2"}, `{"ok":"add consumer q2"}`},
		{"cancel_consumer", map[string]any{"queue": "q1"}, `{"ok":"no longer consuming from q1"}`},
		{"enable_events", nil, `{"ok":"task events enabled"}`},
		{"enable_events", nil, `{"ok":"task events already enabled"}`},
		{"disable_events", nil, `{"ok":"task events disabled"}`},
		{"disable_events", nil, `{"ok":"task events already disabled"}`},
		{"heartbeat", nil, `null`},
		{"election", map[string]any{"id": "1", "topic": "t"}, `null`},
		{"autoscale", map[string]any{"max": 3, "min": 1}, `{"error":"ValueError('Autoscale not enabled')"}`},
		{"pool_restart", nil, `{"error":"ValueError('Pool restarts not enabled')"}`},
		{"pool_grow", nil, `{"error":"RuntimeError('worker: not running')"}`},
		{"pool_shrink", map[string]any{"n": json.Number("2")}, `{"ok":"pool will shrink"}`},
		{"pool_shrink", map[string]any{"n": json.Number("2")}, `{"error":"ValueError('worker: the pool cannot shrink below 1')"}`},
		{"memdump", nil, `{"error":"memdump is not supported by omics-worker (a Go worker)"}`},
		{"active", map[string]any{"safe": nil}, `[]`},
		{"reserved", nil, `[]`},
		{"scheduled", nil, `[]`},
		{"query_task", map[string]any{"ids": "x"}, `{}`},
		{"hello", map[string]any{"from_node": "go@test"}, `null`},
		{"shutdown", nil, `<no reply>`},
	} {
		if got := call(t, s, tc.method, tc.args); got != tc.want {
			t.Errorf("%s %v:\n got %s\nwant %s", tc.method, tc.args, got, tc.want)
		}
	}
	if !*shut {
		t.Error("shutdown did not call Shutdown")
	}
	if ev.beats != 1 {
		t.Error("heartbeat not sent")
	}
	if q := w.Queues(); strings.Join(q, ",") != "q2" {
		t.Errorf("queues %v", q)
	}
}

func TestStatsShape(t *testing.T) {
	s, _, _, _, _ := newTestServer(t)
	var st map[string]any
	if err := json.Unmarshal([]byte(call(t, s, "stats", nil)), &st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"total", "pid", "clock", "uptime", "pool", "broker", "prefetch_count", "rusage"} {
		if _, ok := st[k]; !ok {
			t.Errorf("stats lacks %q", k)
		}
	}
	if _, ok := st["clock"].(string); !ok {
		t.Errorf("clock must be a string: %v", st["clock"])
	}
	pool := st["pool"].(map[string]any)
	if pool["max-concurrency"] != 3.0 || st["pid"] != 4242.0 {
		t.Errorf("pool %v pid %v", pool, st["pid"])
	}
	ru, ok := st["rusage"].(map[string]any)
	if !ok || ru["maxrss"] == nil {
		t.Errorf("rusage %v", st["rusage"])
	}
}

func TestHelloMergesAndFloats(t *testing.T) {
	s, w, _, _, _ := newTestServer(t)
	w.Revoked().Add("mine")
	v, _ := s.Handle(context.Background(), &protocol.ControlRequest{Method: "hello", Arguments: map[string]any{
		"from_node": "celery@py",
		"revoked":   map[string]any{"theirs": []any{json.Number(jsonFloat(worker.Monotonic() - 5)), "theirs"}},
	}})
	env, err := protocol.EncodeControlReply("go@test", "t", protocol.ReplyTo{}, v, 1)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := protocol.DecodeEnvelope(env)
	body, _ := e.DecodeBody()
	// every timestamp has a fraction (Python requires floats)
	var m map[string]struct {
		Revoked map[string][]json.RawMessage `json:"revoked"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if len(m["go@test"].Revoked) != 2 {
		t.Fatalf("reply %s", body)
	}
	for id, pair := range m["go@test"].Revoked {
		if !strings.ContainsAny(string(pair[0]), ".eE") {
			t.Errorf("%s: timestamp %s is not a float", id, pair[0])
		}
	}
	if !w.Revoked().Contains("theirs") {
		t.Error("hello did not merge the peer's revokes")
	}
	bad := call(t, s, "hello", map[string]any{"from_node": "x", "revoked": map[string]any{"a": "zzz"}})
	if !strings.Contains(bad, "ValueError") {
		t.Errorf("bad hello: %s", bad)
	}
}

func jsonFloat(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

func TestHandleRawReplyAndAddressing(t *testing.T) {
	s, w, mb, _, _ := newTestServer(t)
	send := func(req *protocol.ControlRequest) {
		raw, err := protocol.EncodeControlRequest(req)
		if err != nil {
			t.Fatal(err)
		}
		s.HandleRaw(context.Background(), raw)
	}
	rt := &protocol.ReplyTo{Exchange: protocol.ReplyExchange, RoutingKey: "oid"}
	send(&protocol.ControlRequest{Method: "ping", Ticket: "t1", ReplyTo: rt, Clock: 100})
	send(&protocol.ControlRequest{Method: "ping", Ticket: "t2", ReplyTo: rt, Destination: []string{"other@x"}})
	send(&protocol.ControlRequest{Method: "ping", Ticket: "t3", ReplyTo: rt, Pattern: "go@*", Matcher: "glob"})
	send(&protocol.ControlRequest{Method: "ping"}) // cast: no reply
	send(&protocol.ControlRequest{Method: "shutdown", Ticket: "t4", ReplyTo: rt})
	if len(mb.replies) != 2 {
		t.Fatalf("%d replies, want 2", len(mb.replies))
	}
	e, _ := protocol.DecodeEnvelope(mb.replies[0])
	node, val, ticket, err := protocol.DecodeControlReply(e)
	if err != nil || node != "go@test" || ticket != "t1" {
		t.Fatalf("reply %v %v %v %v", node, val, ticket, err)
	}
	if w.Clock().Value() <= 100 {
		t.Errorf("clock not adjusted: %d", w.Clock().Value())
	}
}

func FuzzHandleControl(f *testing.F) {
	for _, req := range []*protocol.ControlRequest{
		{Method: "ping", Ticket: "t", ReplyTo: &protocol.ReplyTo{Exchange: "reply.celery.pidbox", RoutingKey: "x"}},
		{Method: "revoke", Arguments: map[string]any{"task_id": []any{"a", 1, nil}, "terminate": true, "signal": 9}},
		{Method: "rate_limit", Arguments: map[string]any{"task_name": "proj.add", "rate_limit": "1e400/h"}},
		{Method: "hello", Arguments: map[string]any{"from_node": "x", "revoked": map[string]any{"a": []any{1.5}}}},
		{Method: "pool_grow", Arguments: map[string]any{"n": "abc"}},
		{Method: "time_limit", Arguments: map[string]any{"task_name": "proj.add", "soft": -1}},
	} {
		raw, err := protocol.EncodeControlRequest(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"body": "e30=", "properties": {"body_encoding": "base64"}, "content-type": "application/json"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, _, _, _, _ := newTestServer(t)
		s.HandleRaw(context.Background(), raw)
		// Also straight into the dispatcher with arbitrary arguments.
		env, err := protocol.DecodeEnvelope(raw)
		if err != nil {
			return
		}
		req, err := protocol.DecodeControlRequest(env)
		if err != nil {
			return
		}
		for _, m := range Commands() {
			if m == "shutdown" {
				continue
			}
			s.Handle(context.Background(), &protocol.ControlRequest{Method: m, Arguments: req.Arguments})
		}
	})
}
