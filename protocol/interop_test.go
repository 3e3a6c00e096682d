package protocol

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/pyruntime"
)

// decodeWithPython runs testdata/interop/capture/decode_envelopes.py (the
// real kombu / celery decode paths of the runtime py: 5.2.4 / 5.2.6 or
// 5.5.3 / 5.5.2; results go through Redis DB 15 and AsyncResult).
func decodeWithPython(t *testing.T, py pyruntime.Runtime, items []map[string]string) []map[string]any {
	t.Helper()
	script := readFile(t, filepath.Join("..", "testdata", "interop", "capture", "decode_envelopes.py"))
	in, _ := json.Marshal(items)
	out := runPython(t, py, string(script), in)
	var rows []map[string]any
	dec := json.NewDecoder(strings.NewReader(string(out)))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("python output: %v\n%s", err, out)
	}
	if len(rows) != len(items) {
		t.Fatalf("python returned %d rows for %d items", len(rows), len(items))
	}
	for i, r := range rows {
		if e, ok := r["error"]; ok {
			t.Fatalf("python failed on item %d: %v", i, e)
		}
	}
	return rows
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// TestPythonDecodesOurTasks: envelopes from EncodeTask become a celery
// worker Request with the same id, args, eta, limits, headers.
func TestPythonDecodesOurTasks(t *testing.T) { forEachCelery(t, testPythonDecodesOurTasks) }

func testPythonDecodesOurTasks(t *testing.T, py pyruntime.Runtime) {
	eta := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	hard, soft := 30.0, 10.5
	gi := 2
	m1 := NewTaskMessage("proj.tasks.add", []any{json.Number("2"), "it's", 1.5, nil, []any{true}},
		map[string]any{"raw_file_id": json.Number("42"), "name": "héllo"})
	m1.ETA, m1.TimeLimit, m1.ParentID, m1.Group, m1.GroupIndex = &eta, [2]*float64{&hard, &soft}, "parent", "grp", &gi
	m1.ExpiresRaw = "2030-01-03T00:00:00+00:00"
	m1.Headers = map[string]json.RawMessage{"x-trace": json.RawMessage(`"abc"`)}
	m1.Embed.Chain = []Signature{{"task": "proj.tasks.mul", "args": []any{}, "kwargs": map[string]any{}, "options": map[string]any{}, "subtask_type": nil, "immutable": false}}
	m2 := NewTaskMessage("proj.tasks.add", nil, nil)
	m2.Retries = 3
	// a captured Python message, decoded and re-encoded by us (retry path)
	env, _ := DecodeEnvelope(readFile(t, "testdata/tasks/v2_custom_headers.json"))
	m3, err := DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	m3.Retries++
	var items []map[string]string
	for i, m := range []*TaskMessage{m1, m2, m3} {
		raw, err := EncodeTask(m, PublishOptions{Queue: "omw-q", ReplyTo: "oid", Priority: i * 3, Origin: "celery@go"})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, map[string]string{"kind": "task", "raw": string(raw)})
	}
	rows := decodeWithPython(t, py, items)

	r := rows[0]
	req := r["request"]
	if get(req, "id") != m1.ID || get(req, "root_id") != m1.ID || get(req, "parent_id") != "parent" ||
		get(req, "group") != "grp" || get(req, "group_index") != json.Number("2") {
		t.Errorf("ids: %v", req)
	}
	if mustJSON(t, get(req, "args")) != `[2,"it's",1.5,null,[true]]` || mustJSON(t, get(req, "kwargs")) != `{"name":"héllo","raw_file_id":42}` {
		t.Errorf("args/kwargs: %v %v", get(req, "args"), get(req, "kwargs"))
	}
	if get(req, "eta") != "2030-01-02T03:04:05.123456+00:00" || get(req, "expires") != "2030-01-03T00:00:00+00:00" {
		t.Errorf("eta/expires: %v %v", get(req, "eta"), get(req, "expires"))
	}
	if mustJSON(t, get(req, "time_limits")) != "[30.0,10.5]" && mustJSON(t, get(req, "time_limits")) != "[30,10.5]" {
		t.Errorf("time_limits %v", get(req, "time_limits"))
	}
	if get(req, "argsrepr") != `(2, 'it\'s', 1.5, None, [True])` || get(req, "kwargsrepr") != `{'name': 'héllo', 'raw_file_id': 42}` {
		t.Errorf("repr %v %v", get(req, "argsrepr"), get(req, "kwargsrepr"))
	}
	if get(req, "custom", "x-trace") != "abc" || get(req, "chain") == nil {
		t.Errorf("custom/chain lost: %v", req)
	}
	if get(r, "delivery_info", "routing_key") != "omw-q" || get(r, "delivery_info", "exchange") != "" ||
		get(r, "properties", "correlation_id") != m1.ID || get(r, "content_type") != ContentTypeJSON {
		t.Errorf("kombu view: %v", r)
	}
	if get(rows[1], "request", "retries") != json.Number("3") || get(rows[1], "properties", "priority") != json.Number("3") {
		t.Errorf("m2: %v", rows[1])
	}
	if get(rows[2], "request", "id") != m3.ID || get(rows[2], "request", "retries") != json.Number("1") ||
		get(rows[2], "headers", "tenant") != json.Number("7") {
		t.Errorf("re-encoded Python message: %v", rows[2])
	}
}

// TestPythonReadsOurResults: metas we encode are read by AsyncResult as
// the right state, value and exception (class resolution included).
func TestPythonReadsOurResults(t *testing.T) { forEachCelery(t, testPythonReadsOurResults) }

func testPythonReadsOurResults(t *testing.T, py pyruntime.Runtime) {
	done := time.Now()
	tb := "Traceback (most recent call last):\nGoError: boom\n"
	metas := []ResultMeta{
		{Status: StateSuccess, Result: map[string]any{"status": "ok", "n": 2.0}, DateDone: &done},
		{Status: StateFailure, Result: NewExceptionInfo("ValueError", ModuleBuiltins, "Unsupported file format: .xyz"), Traceback: &tb, DateDone: &done},
		{Status: StateFailure, Result: NewExceptionInfo("NotRegistered", ModuleCelery, "proj.tasks.nope"), DateDone: &done},
		{Status: StateFailure, Result: NewExceptionInfo("TimeLimitExceeded", ModuleBilliard, 300.0), DateDone: &done},
		{Status: StateFailure, Result: NewExceptionInfo("ContentDisallowed", "kombu.exceptions", "refusing to deserialize a pickle message"), DateDone: &done},
		{Status: StateFailure, Result: NewExceptionInfo("ProcessingError", "omics_worker.errors", "bad VCF header at line 3"), DateDone: &done},
		{Status: StateRevoked, Result: NewExceptionInfo("TaskRevokedError", ModuleCelery, "expired"), DateDone: &done},
		{Status: "PROGRESS", Result: map[string]any{"status": "processing", "progress": 40}},
		{Status: StateSuccess, Result: json.Number("4"), DateDone: &done, NaiveDateDone: true},
	}
	var items []map[string]string
	for i := range metas {
		metas[i].TaskID = "omw-proto-" + pyfmt.NewUUID4().String()
		raw, err := metas[i].MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, map[string]string{"kind": "result", "raw": string(raw), "id": metas[i].TaskID})
	}
	rows := decodeWithPython(t, py, items)
	check := func(i int, state string, class, module string, args string) {
		t.Helper()
		r := rows[i]
		if r["state"] != state {
			t.Errorf("%d: state %v", i, r["state"])
		}
		if class != "" {
			res := r["result"]
			if get(res, "class") != class || get(res, "module") != module || mustJSON(t, get(res, "args")) != args ||
				get(res, "is_exception") != true {
				t.Errorf("%d: exception %v", i, res)
			}
			if IsPropagate(state) && get(r, "raised", "class") != class {
				t.Errorf("%d: get() raised %v", i, r["raised"])
			}
		}
	}
	if rows[0]["state"] != "SUCCESS" || mustJSON(t, rows[0]["result"]) != `{"n":2.0,"status":"ok"}` || rows[0]["date_done_type"] != "datetime" {
		t.Errorf("success: %v", rows[0])
	}
	check(1, "FAILURE", "ValueError", "builtins", `["Unsupported file format: .xyz"]`)
	if rows[1]["traceback"] != tb || rows[1]["info_str"] != "Unsupported file format: .xyz" {
		t.Errorf("failure traceback/info: %v", rows[1])
	}
	check(2, "FAILURE", "NotRegistered", "celery.exceptions", `["proj.tasks.nope"]`)
	check(3, "FAILURE", "TimeLimitExceeded", "billiard.exceptions", `[300.0]`)
	check(4, "FAILURE", "ContentDisallowed", "kombu.exceptions", `["refusing to deserialize a pickle message"]`)
	// a module the client never imported: celery synthesizes a class
	check(5, "FAILURE", "ProcessingError", "celery.exceptions", `["bad VCF header at line 3"]`)
	if rows[5]["info_str"] != "bad VCF header at line 3" {
		t.Errorf("synthesized exception str: %v", rows[5]["info_str"])
	}
	check(6, "REVOKED", "TaskRevokedError", "celery.exceptions", `["expired"]`)
	if rows[7]["state"] != "PROGRESS" || mustJSON(t, rows[7]["result"]) != `{"progress":40,"status":"processing"}` || rows[7]["ready"] != false {
		t.Errorf("progress: %v", rows[7])
	}
	if rows[8]["get"] != json.Number("4") || rows[8]["date_done_type"] != "datetime" {
		t.Errorf("naive success: %v", rows[8])
	}
}

// TestPythonDecodesOurControlAndEvents: kombu decodes our pidbox replies,
// requests and events.
func TestPythonDecodesOurControlAndEvents(t *testing.T) {
	forEachCelery(t, testPythonDecodesOurControlAndEvents)
}

func testPythonDecodesOurControlAndEvents(t *testing.T, py pyruntime.Runtime) {
	reply, _ := EncodeControlReply("celery@go", "tk", ReplyTo{Exchange: ReplyExchange, RoutingKey: "oid"},
		map[string]any{"revoked": map[string]any{"a": []any{123.0, "a"}}, "clock": 9}, 5)
	req, _ := EncodeControlRequest(&ControlRequest{Method: "ping", Ticket: "t", ReplyTo: &ReplyTo{Exchange: ReplyExchange, RoutingKey: "oid"}, Clock: 3})
	ev, _ := EncodeEvent("celery@go", map[string]any{"type": "worker-heartbeat", "freq": 2.0, "clock": 1, "active": 0, "processed": 1,
		"loadavg": []float64{0.1, 0.2, 0.3}, "sw_ident": "omics-worker", "sw_ver": "5.2.6", "sw_sys": "Linux"})
	rows := decodeWithPython(t, py, []map[string]string{{"kind": "message", "raw": string(reply)},
		{"kind": "message", "raw": string(req)}, {"kind": "message", "raw": string(ev)}})
	if get(rows[0], "headers", "ticket") != "tk" || get(rows[0], "headers", "clock") != json.Number("5") ||
		get(rows[0], "body", "celery@go", "clock") != json.Number("9") || get(rows[0], "body_types", ".revoked") != "dict" {
		t.Errorf("reply: %v", rows[0])
	}
	if mustJSON(t, get(rows[0], "body", "celery@go", "revoked")) != `{"a":[123.0,"a"]}` {
		t.Errorf("hello timestamps: %v", get(rows[0], "body"))
	}
	if get(rows[1], "body", "method") != "ping" || get(rows[1], "delivery_info", "exchange") != PidboxExchange {
		t.Errorf("request: %v", rows[1])
	}
	if get(rows[2], "body_types", "freq") != "float" || get(rows[2], "body_types", "timestamp") != "float" ||
		get(rows[2], "body_types", "utcoffset") != "int" || get(rows[2], "headers", "hostname") != "celery@go" ||
		get(rows[2], "delivery_info", "routing_key") != "worker.heartbeat" {
		t.Errorf("event: %v", rows[2])
	}
}
