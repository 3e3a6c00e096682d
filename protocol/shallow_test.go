package protocol

import (
	"errors"
	"strings"
	"testing"
)

func nest(n int, inner string) string {
	return strings.Repeat("[", n) + inner + strings.Repeat("]", n)
}

func rawEnvelope(headers, extra string) []byte {
	return []byte(`{"body": "W1tdLCB7fSwge31d", "content-encoding": "utf-8", "content-type": "application/json", ` + extra +
		`"headers": ` + headers + `, "properties": {"body_encoding": "base64", "delivery_tag": "t", "correlation_id": "cid"}}`)
}

func base64Envelope(body []byte, headers string) []byte {
	return []byte(`{"body": "` + base64Std(body) + `", "content-encoding": "utf-8", "content-type": "application/json", "headers": ` +
		headers + `, "properties": {"body_encoding": "base64", "delivery_tag": "t", "correlation_id": "cid"}}`)
}

// Issue 9 #10: an envelope nested 10 001+ levels deep was reported as
// "not a JSON object". It is refused with the nesting limit named, from
// one level past MaxNestingDepth (the top-level object is level 1).
func TestEnvelopeNestingLimit(t *testing.T) {
	hdr := `{"task": "t.add", "id": "deep-id"}`
	ok := rawEnvelope(hdr, `"x": `+nest(MaxNestingDepth-1, "")+`, `)
	if _, err := DecodeEnvelope(ok); err != nil {
		t.Fatalf("depth %d refused: %v", MaxNestingDepth, err)
	}
	for _, n := range []int{MaxNestingDepth, 10_001, 200_000} {
		raw := rawEnvelope(hdr, `"x": `+nest(n, "")+`, `)
		_, err := DecodeEnvelope(raw)
		if !errors.Is(err, ErrTooDeep) || !errors.Is(err, ErrBadEnvelope) {
			t.Fatalf("depth %d: %v", n+1, err)
		}
		if want := "message nested too deeply (limit 1000)"; !strings.Contains(err.Error(), want) {
			t.Errorf("depth %d: %q lacks %q", n+1, err, want)
		}
		var ne *NestingError
		if !errors.As(err, &ne) || ne.Part != "envelope" || raw[ne.Offset] != '[' {
			t.Errorf("depth %d: position %+v", n+1, ne)
		}
		if id, task := PeekRawTaskID(raw); id != "deep-id" || task != "t.add" {
			t.Errorf("depth %d: PeekRawTaskID = %q, %q", n+1, id, task)
		}
	}
	// Deep headers values and a deep value before the headers.
	raw := []byte(`{"a": ` + nest(300_000, `"]\"["`) + `, "headers": {"x": {"y": ` + nest(50_000, "{}") + `}, "id": "i2", "task": "t2"}}`)
	if id, task := PeekRawTaskID(raw); id != "i2" || task != "t2" {
		t.Errorf("deep siblings: PeekRawTaskID = %q, %q", id, task)
	}
	// Brackets inside strings do not count.
	if _, err := DecodeEnvelope(rawEnvelope(`{"id": "`+strings.Repeat("[", 5000)+`"}`, "")); err != nil {
		t.Errorf("brackets in a string: %v", err)
	}
	// Other invalid JSON is named as such, with a position.
	if _, err := DecodeEnvelope([]byte(`{"body": tru}`)); err == nil || !strings.Contains(err.Error(), "not valid JSON (byte") {
		t.Errorf("invalid JSON: %v", err)
	}
}

func TestPeekRawTaskIDShallow(t *testing.T) {
	tests := []struct {
		raw      string
		id, task string
	}{
		{`{"body": 42, "headers": {"id": "abc", "task": "t.x"}}`, "abc", "t.x"},
		{` {"headers": {"id": "a\u00e9", "task": 5}} `, "a\u00e9", ""},
		{`{"headers": {"id": 5}}`, "", ""},
		{`{"headers": {"id": "a"}, "headers": {"id": "b"}}`, "b", ""},
		{`{"headers": [1]}`, "", ""},
		{`[1]`, "", ""},
		{"\xff{", "", ""},
		{`{"headers": {"id": "x"`, "", ""},
		{`{"headers": {"id": "x"}, "b": [1}`, "", ""}, // mismatched brackets
		{`{"headers": {"id": "x"}, "b": "x}`, "", ""}, // unterminated string
		{`{"headers": {"id": "x"}} trailing`, "", ""}, // trailing bytes
		{`{"headers": {"id": "x"}, "b": ` + nest(100, "") + `}`, "x", ""},
		{``, "", ""},
	}
	for _, tc := range tests {
		id, task := PeekRawTaskID([]byte(tc.raw))
		if id != tc.id || task != tc.task {
			t.Errorf("PeekRawTaskID(%.60q) = %q, %q; want %q, %q", tc.raw, id, task, tc.id, tc.task)
		}
	}
}

// Issue 9 #10: the body (base64-decoded task payload) has the same limit;
// the id stays readable for the FAILURE, v2 (headers) and v1 (body).
func TestBodyNestingLimit(t *testing.T) {
	const v2h = `{"task": "t.add", "id": "abc"}`
	good := base64Envelope([]byte(`[`+nest(MaxNestingDepth-1, "")+`, {}, {}]`), v2h)
	env, err := DecodeEnvelope(good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTask(env); err != nil {
		t.Fatalf("body depth %d refused: %v", MaxNestingDepth, err)
	}
	for _, n := range []int{MaxNestingDepth, 20_000} {
		env, err := DecodeEnvelope(base64Envelope([]byte(`[`+nest(n, "")+`, {}, {}]`), v2h))
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeTask(env)
		if !errors.Is(err, ErrUndecodable) || !errors.Is(err, ErrTooDeep) ||
			!strings.Contains(err.Error(), "body is not valid JSON: message nested too deeply (limit 1000): body") {
			t.Fatalf("body depth %d: %v", n+1, err)
		}
		if id, _ := PeekTaskID(env); id != "abc" {
			t.Errorf("PeekTaskID = %q", id)
		}
	}
	// v1: the id is in the deep body itself.
	env, err = DecodeEnvelope(base64Envelope([]byte(`{"task": "t.v1", "args": `+nest(20_000, "")+`, "id": "v1-id"}`), `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTask(env); !errors.Is(err, ErrTooDeep) {
		t.Fatalf("v1 deep body: %v", err)
	}
	if id, task := PeekTaskID(env); id != "v1-id" || task != "t.v1" {
		t.Errorf("v1 PeekTaskID = %q, %q", id, task)
	}
}

// Issue 9 #11: kombu decodes a JSON body with bytes.decode('utf-8'), which
// raises on invalid UTF-8 (the worker logs "Can't decode message body" and
// drops the message); encoding/json accepted it, turning the bytes into
// U+FFFD. The body is refused, the position named.
func TestBodyInvalidUTF8(t *testing.T) {
	const v2h = `{"task": "t.add", "id": "abc"}`
	for _, tc := range []struct {
		body string
		off  int
	}{
		{"[[\"\xff\"], {}, {}]", 3},
		{"[[], {\"k\xc3\": 1}, {}]", 8},
		{"[[\"\xed\xa0\x80\"], {}, {}]", 3}, // an encoded surrogate: Python's codec refuses it too
		{"[[\"ok\"], {}, {}]\xfe", 16},
	} {
		env, err := DecodeEnvelope(base64Envelope([]byte(tc.body), v2h))
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeTask(env)
		var ue *InvalidUTF8Error
		if !errors.Is(err, ErrUndecodable) || !errors.As(err, &ue) || ue.Offset != tc.off {
			t.Errorf("%q: %v (%+v)", tc.body, err, ue)
			continue
		}
		if !strings.Contains(err.Error(), "body is not valid JSON: invalid UTF-8 at byte") {
			t.Errorf("%q: %v", tc.body, err)
		}
		if id, _ := PeekTaskID(env); id != "abc" {
			t.Errorf("PeekTaskID = %q", id)
		}
	}
	// Valid multi-byte text is accepted; latin-1 bodies are transcoded.
	env, _ := DecodeEnvelope(base64Envelope([]byte("[[\"h\u00e9 \u4e16 \U0001f600\"], {}, {}]"), v2h))
	if msg, err := DecodeTask(env); err != nil || msg.Args[0] != "h\u00e9 \u4e16 \U0001f600" {
		t.Errorf("valid UTF-8: %v %v", err, msg)
	}
	env, _ = DecodeEnvelope(base64Envelope([]byte("[[\"caf\xe9\"], {}, {}]"), v2h))
	env.ContentEncoding = "latin-1"
	if msg, err := DecodeTask(env); err != nil || msg.Args[0] != "caf\u00e9" {
		t.Errorf("latin-1: %v %v", err, msg)
	}
	// Outside the body kombu decodes the envelope with errors='replace':
	// invalid bytes in a header string become U+FFFD, as here.
	env, err := DecodeEnvelope(rawEnvelope("{\"task\": \"t.add\", \"id\": \"abc\", \"argsrepr\": \"\xff\"}", ""))
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := DecodeTask(env); err != nil || msg.ArgsRepr != "\ufffd" {
		t.Errorf("envelope with invalid UTF-8: %v %+v", err, msg)
	}
}

func FuzzPeekRawTaskID(f *testing.F) {
	for _, s := range []string{
		`{"body": 42, "headers": {"id": "abc", "task": "t.x"}}`,
		`{"a": ` + nest(2000, `"]"`) + `, "headers": {"id": "i"}}`,
		`{"headers": {"id": "x"}, "b": [1}`,
		"{\"headers\": {\"id\": \"\xff\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, task := PeekRawTaskID(raw)
		// Whenever the envelope decodes fully, the shallow peek agrees.
		env, err := DecodeEnvelope(raw)
		if err != nil || hasDuplicateKeys(raw) {
			return
		}
		if got := env.HeaderString("id"); got != id {
			t.Fatalf("id %q, envelope says %q\n%s", id, got, raw)
		}
		if got := env.HeaderString("task"); got != task {
			t.Fatalf("task %q, envelope says %q\n%s", task, got, raw)
		}
	})
}
