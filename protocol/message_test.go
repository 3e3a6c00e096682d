package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// taskView is the golden-file view of a decoded task message.
type taskView struct {
	Version      int
	Hybrid       bool   `json:",omitempty"`
	Error        string `json:",omitempty"`
	ErrorKind    string `json:",omitempty"`
	PeekID       bool   `json:",omitempty"`
	Task         string `json:",omitempty"`
	Shadow       string `json:",omitempty"`
	Args         []any
	Kwargs       map[string]any
	Embed        Embed
	Retries      int
	ETA          string `json:",omitempty"`
	Expires      string `json:",omitempty"`
	ExpiresRaw   string `json:",omitempty"`
	TimeLimit    [2]*float64
	HasRootID    bool
	HasParentID  bool
	Group        bool
	GroupIndex   *int
	ArgsRepr     string
	KwargsRepr   string
	IgnoreResult bool
	Stamps       map[string]any `json:",omitempty"`
	CustomHeader map[string]json.RawMessage
	Queue        string
	Priority     int
	Step         int
}

func errKind(err error) string {
	switch {
	case errors.Is(err, ErrContentDisallowed):
		return "ContentDisallowed"
	case errors.Is(err, ErrInvalidTask):
		return "InvalidTask"
	case errors.Is(err, ErrUndecodable):
		return "Undecodable"
	case errors.Is(err, ErrUnknownMessage):
		return "UnknownMessage"
	}
	return "other"
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// TestDecodeTaskGolden decodes every envelope captured from Python celery
// 5.2.6 and compares the result with testdata/golden/tasks/<name>.json.
func TestDecodeTaskGolden(t *testing.T) {
	n := DefaultNames(15)
	for _, path := range fixtures(t, "tasks") {
		name := fixtureName(path)
		t.Run(name, func(t *testing.T) {
			env, err := DecodeEnvelope(readFile(t, path))
			if err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			v := taskView{Queue: env.Properties.DeliveryInfo.RoutingKey, Priority: env.Properties.Priority,
				Step: n.PriorityStep(env.Properties.Priority)}
			msg, err := DecodeTask(env)
			if err != nil {
				v.Error, v.ErrorKind = err.Error(), errKind(err)
				id, task := PeekTaskID(env)
				v.PeekID, v.Task = id != "", task
				golden(t, "tasks/"+name, v)
				return
			}
			if msg.ID == "" || msg.ID != env.Properties.CorrelationID {
				t.Errorf("id %q, correlation_id %q", msg.ID, env.Properties.CorrelationID)
			}
			if msg.Version == 2 && msg.RootID != msg.ID {
				t.Errorf("root_id %q != id %q", msg.RootID, msg.ID)
			}
			v.Version, v.Hybrid, v.Task, v.Shadow = msg.Version, msg.Hybrid, msg.Task, msg.Shadow
			v.Args, v.Kwargs, v.Embed, v.Retries = msg.Args, msg.Kwargs, msg.Embed, msg.Retries
			v.ETA, v.Expires, v.TimeLimit = fmtTime(msg.ETA), fmtTime(msg.Expires), msg.TimeLimit
			if msg.ETA != nil || strings.Contains(name, "expires_seconds") {
				v.ETA, v.Expires = "(set)", "(set)" // relative to capture time
				if msg.ETA == nil {
					v.ETA = ""
				}
				if msg.Expires == nil {
					v.Expires = ""
				}
				if strings.Contains(name, "v2_eta") { // absolute
					v.ETA = fmtTime(msg.ETA)
				}
			}
			if !strings.Contains(name, "expires_seconds") && !strings.Contains(name, "v1_eta") {
				v.ExpiresRaw = msg.ExpiresRaw
			}
			v.HasRootID, v.HasParentID, v.Group, v.GroupIndex = msg.RootID != "", msg.ParentID != "", msg.Group != "", msg.GroupIndex
			v.ArgsRepr, v.KwargsRepr, v.IgnoreResult, v.Stamps = msg.ArgsRepr, msg.KwargsRepr, msg.IgnoreResult, msg.Stamps
			v.CustomHeader = map[string]json.RawMessage{}
			for k, raw := range msg.Headers {
				if !isCoreHeader(k) {
					v.CustomHeader[k] = raw
				}
			}
			// argsrepr written by Python must equal our celery saferepr of
			// the decoded args (tuples for v2, lists for v1).
			if msg.Version == 2 {
				got := SafeReprArgs(msg.Args, DefaultReprMax)
				if strings.HasPrefix(msg.ArgsRepr, "[") { // Python was given a list
					got = SafeRepr(msg.Args, DefaultReprMax)
				}
				if got != msg.ArgsRepr {
					t.Errorf("SafeReprArgs = %q, Python argsrepr = %q", got, msg.ArgsRepr)
				}
			}
			golden(t, "tasks/"+name, v)
		})
	}
}

func isCoreHeader(k string) bool {
	for _, c := range coreHeaders {
		if c == k {
			return true
		}
	}
	return false
}

func TestDecodeTaskErrors(t *testing.T) {
	b64 := func(s string) string { return base64Std([]byte(s)) }
	env := func(ct, body string, headers string) []byte {
		return []byte(`{"body": "` + b64(body) + `", "content-encoding": "utf-8", "content-type": "` + ct +
			`", "headers": ` + headers + `, "properties": {"body_encoding": "base64", "delivery_tag": "t", "correlation_id": "cid"}}`)
	}
	const v2h = `{"task": "t.add", "id": "abc"}`
	tests := []struct {
		name, raw string
		kind      error
		field     string
	}{
		{"pickle v2", string(env("application/x-python-serialize", "\x80\x04", v2h)), ErrContentDisallowed, ""},
		{"yaml v1", string(env("application/x-yaml", "task: x", `{}`)), ErrContentDisallowed, ""},
		{"bad json", string(env("application/json", "[1,", v2h)), ErrUndecodable, ""},
		{"bad base64", `{"body": "!!!", "content-type": "application/json", "headers": {"task": "a", "id": "b"}, "properties": {"body_encoding": "base64"}}`, ErrUndecodable, ""},
		{"lzma", `{"body": "AAAA", "content-type": "application/json", "headers": {"task": "a", "id": "b", "compression": "application/x-lzma"}, "properties": {"body_encoding": "base64"}}`, ErrUndecodable, ""},
		{"no task", string(env("application/json", `[[], {}, {}]`, `{}`)), ErrUnknownMessage, ""},
		{"headers list", string(env("application/json", `{"task": "a", "id": "b"}`, `["x"]`)), ErrUnknownMessage, ""},
		{"kwargs list", string(env("application/json", `[[], [], {}]`, v2h)), ErrInvalidTask, "kwargs"},
		{"args obj", string(env("application/json", `[{}, {}, {}]`, v2h)), ErrInvalidTask, "args"},
		{"body obj no args", string(env("application/json", `{"x": 1}`, v2h)), ErrInvalidTask, "body"},
		{"short body", string(env("application/json", `[[]]`, v2h)), ErrInvalidTask, "body"},
		{"bad eta", string(env("application/json", `[[], {}, null]`, `{"task": "a", "id": "b", "eta": "tomorrow"}`)), ErrInvalidTask, "eta"},
		{"bad expires", string(env("application/json", `[[], {}, null]`, `{"task": "a", "id": "b", "expires": [1]}`)), ErrInvalidTask, "expires"},
		{"no id", string(env("application/json", `[[], {}, null]`, `{"task": "a"}`)), ErrInvalidTask, "id"},
		{"task not string", string(env("application/json", `[[], {}, null]`, `{"task": 5, "id": "x"}`)), ErrInvalidTask, "task"},
		{"bad retries", string(env("application/json", `[[], {}, null]`, `{"task": "a", "id": "b", "retries": "x"}`)), ErrInvalidTask, "retries"},
		{"bad timelimit", string(env("application/json", `[[], {}, null]`, `{"task": "a", "id": "b", "timelimit": ["x", 1]}`)), ErrInvalidTask, "timelimit"},
		{"bad chain", string(env("application/json", `[[], {}, {"chain": 5}]`, v2h)), ErrInvalidTask, "embed.chain"},
		{"v1 kwargs list", string(env("application/json", `{"task": "a", "id": "b", "kwargs": []}`, `{}`)), ErrInvalidTask, "kwargs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeEnvelope([]byte(tc.raw))
			if err != nil {
				t.Fatalf("DecodeEnvelope: %v", err)
			}
			_, err = DecodeTask(e)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if tc.field != "" {
				var ite *InvalidTaskError
				if !errors.As(err, &ite) || ite.Field != tc.field {
					t.Fatalf("err = %#v, want field %q", err, tc.field)
				}
			}
			if id, _ := PeekTaskID(e); id == "" {
				t.Errorf("PeekTaskID found no id")
			}
		})
	}
}

func TestContentDisallowedMessage(t *testing.T) {
	err := error(&ContentDisallowedError{ContentType: "application/x-python-serialize"})
	want := "refusing to deserialize a pickle message (content-type application/x-python-serialize): only JSON is accepted"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %q", err)
	}
	if !errors.Is(err, ErrContentDisallowed) {
		t.Error("not ErrContentDisallowed")
	}
}

func TestDecodeTaskLenient(t *testing.T) {
	tests := []struct {
		name, headers, body string
		check               func(t *testing.T, m *TaskMessage)
	}{
		{"null embed, typed datetime eta, naive expires", `{"task": "a", "id": "b", "eta": {"__type__": "datetime", "__value__": "2030-01-01T00:00:00+01:00"}, "expires": "2030-01-01T00:00:00"}`,
			`[[{"__type__": "uuid", "__value__": {"hex": "00"}}], {}, null]`, func(t *testing.T, m *TaskMessage) {
				if m.ETA == nil || !m.ETA.Equal(time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC)) {
					t.Errorf("eta %v", m.ETA)
				}
				if m.Expires == nil || !m.Expires.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
					t.Errorf("expires %v", m.Expires)
				}
				if _, ok := m.Args[0].(map[string]any); !ok {
					t.Errorf("typed arg %T", m.Args[0])
				}
			}},
		{"big ints survive", `{"task": "a", "id": "b"}`, `[[123456789012345678901234567890], {"n": 1.5}, {}]`, func(t *testing.T, m *TaskMessage) {
			if m.Args[0] != json.Number("123456789012345678901234567890") {
				t.Errorf("arg %#v", m.Args[0])
			}
			if m.ArgsRepr != "[123456789012345678901234567890]" {
				t.Errorf("argsrepr %q", m.ArgsRepr)
			}
		}},
		{"hybrid", `{"task": "a", "id": "hdr-id", "retries": 2}`, `{"task": "a", "id": "body-id", "args": [1], "kwargs": {"k": 2}, "callbacks": [{"task": "cb"}], "timelimit": [10, 5], "root_id": "r"}`, func(t *testing.T, m *TaskMessage) {
			if !m.Hybrid || m.ID != "hdr-id" || m.Retries != 2 || m.RootID != "r" || *m.TimeLimit[0] != 10 || len(m.Embed.Callbacks) != 1 {
				t.Errorf("%+v", m)
			}
		}},
		{"v1 taskset wins", `{}`, `{"task": "a", "id": "b", "args": [], "kwargs": {}, "group": "g1", "taskset": "g2", "eta": "2030-01-01T00:00:00.5Z", "expires": 1900000000.5}`, func(t *testing.T, m *TaskMessage) {
			if m.Version != 1 || m.Group != "g2" || m.ETA.Nanosecond() != 5e8 || m.Expires == nil || m.Expires.Unix() != 1900000000 {
				t.Errorf("%+v", m)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw := `{"body": "` + base64Std([]byte(tc.body)) + `", "content-type": "application/json", "content-encoding": "utf-8", "headers": ` + tc.headers + `, "properties": {"body_encoding": "base64"}}`
			e, err := DecodeEnvelope([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			m, err := DecodeTask(e)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, m)
		})
	}
}

func TestEncodeTaskRoundTrip(t *testing.T) {
	msg := NewTaskMessage("proj.tasks.add", []any{json.Number("2"), "it's", 1.5}, map[string]any{"x": nil})
	eta := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	hard, soft := 30.0, 10.5
	gi := 1
	msg.ETA, msg.TimeLimit, msg.Group, msg.GroupIndex, msg.ParentID = &eta, [2]*float64{&hard, &soft}, "g", &gi, "p"
	msg.ExpiresRaw = "2030-01-03T00:00:00+00:00"
	msg.Headers = map[string]json.RawMessage{"x-trace": json.RawMessage(`"abc"`), "compression": json.RawMessage(`"zlib"`), "retries": json.RawMessage(`9`)}
	msg.Embed.Callbacks = []Signature{{"task": "cb", "args": []any{}, "kwargs": map[string]any{}, "options": map[string]any{}, "immutable": false, "subtask_type": nil}}
	raw, err := EncodeTask(msg, PublishOptions{Queue: "q1", ReplyTo: "r", Priority: 6, Origin: "celery@go"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	p := env.Properties
	if p.CorrelationID != msg.ID || p.ReplyTo != "r" || p.DeliveryMode != 2 || p.Priority != 6 || p.BodyEncoding != "base64" ||
		len(p.DeliveryTag) != 36 || p.DeliveryInfo.Exchange != "" || p.DeliveryInfo.RoutingKey != "q1" {
		t.Errorf("properties %+v", p)
	}
	if _, ok := env.Headers["compression"]; ok {
		t.Error("compression header copied")
	}
	got, err := DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != msg.ID || got.RootID != msg.ID || got.Task != msg.Task || got.Retries != 0 || !got.ETA.Equal(eta) ||
		got.ExpiresRaw != msg.ExpiresRaw || *got.TimeLimit[0] != 30 || *got.TimeLimit[1] != 10.5 || got.Group != "g" ||
		*got.GroupIndex != 1 || got.ParentID != "p" || got.Origin != "celery@go" || len(got.Embed.Callbacks) != 1 {
		t.Errorf("decoded %+v", got)
	}
	if got.ArgsRepr != `(2, 'it\'s', 1.5)` || got.KwargsRepr != "{'x': None}" {
		t.Errorf("repr %q %q", got.ArgsRepr, got.KwargsRepr)
	}
	if string(got.Headers["x-trace"]) != `"abc"` {
		t.Errorf("custom header lost: %s", got.Headers["x-trace"])
	}
	if h := string(env.Headers["timelimit"]); h != "[30.0,10.5]" {
		t.Errorf("timelimit header %s", h)
	}
}
