package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

func addFixtureSeeds(f *testing.F, dirs ...string) {
	for _, d := range dirs {
		for _, p := range fixtures(f, d) {
			f.Add(readFile(f, p))
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	addFixtureSeeds(f, "tasks", "pidbox", "events")
	f.Add([]byte(`{"body": null, "headers": "x", "properties": {"priority": "9"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := DecodeEnvelope(raw)
		if err != nil {
			return
		}
		out, err := env.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		env2, err := DecodeEnvelope(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if env2.Body != env.Body || env2.Properties.DeliveryTag != env.Properties.DeliveryTag ||
			env2.Properties.Priority != env.Properties.Priority || len(env2.Headers) != len(env.Headers) {
			t.Fatalf("round trip changed the envelope:\n%s\n%s", raw, out)
		}
		_, _ = env.DecodeBody()
		if red, err := MarkRedelivered(raw); err == nil {
			e3, err := DecodeEnvelope(red)
			if err != nil || !e3.Properties.DeliveryInfo.Redelivered {
				t.Fatalf("MarkRedelivered output: %v\n%s", err, red)
			}
		}
	})
}

func FuzzDecodeTask(f *testing.F) {
	addFixtureSeeds(f, "tasks")
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := DecodeEnvelope(raw)
		if err != nil {
			return
		}
		PeekTaskID(env)
		msg, err := DecodeTask(env)
		if err != nil {
			return
		}
		out, err := EncodeTask(msg, PublishOptions{Queue: "q"})
		if err != nil {
			// only values JSON cannot hold may fail
			return
		}
		env2, err := DecodeEnvelope(out)
		if err != nil {
			t.Fatalf("our envelope does not decode: %v\n%s", err, out)
		}
		msg2, err := DecodeTask(env2)
		if err != nil {
			t.Fatalf("our task does not decode: %v\n%s", err, out)
		}
		if msg2.ID != msg.ID || msg2.Task != msg.Task || msg2.Retries != msg.Retries ||
			mustJSON(t, msg2.Args) != mustJSON(t, msg.Args) || mustJSON(t, msg2.Kwargs) != mustJSON(t, msg.Kwargs) {
			t.Fatalf("round trip changed the task:\n%s\n%s", raw, out)
		}
	})
}

func FuzzDecodeResultMeta(f *testing.F) {
	addFixtureSeeds(f, "results")
	f.Add([]byte(`{"status": "FAILURE", "result": {"exc_type": "E", "exc_message": "x"}, "date_done": "2024-05-01T12:00:00Z"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := DecodeResultMeta(raw)
		if err != nil {
			return
		}
		out, err := m.MarshalJSON()
		if err != nil {
			return // e.g. a result value JSON cannot hold
		}
		m2, err := DecodeResultMeta(out)
		if err != nil {
			t.Fatalf("re-decode: %v\n%s", err, out)
		}
		if m2.Status != m.Status || m2.TaskID != m.TaskID || (m.DateDone == nil) != (m2.DateDone == nil) {
			t.Fatalf("round trip changed the meta:\n%s\n%s", raw, out)
		}
	})
}

func FuzzDecodeControlRequest(f *testing.F) {
	addFixtureSeeds(f, "pidbox")
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, err := DecodeEnvelope(raw)
		if err != nil {
			return
		}
		req, err := DecodeControlRequest(env)
		if err != nil {
			return
		}
		req.AddressedTo("celery@host")
		out, err := EncodeControlRequest(req)
		if err != nil {
			return
		}
		env2, _ := DecodeEnvelope(out)
		req2, err := DecodeControlRequest(env2)
		if err != nil || req2.Method != req.Method || req2.WantsReply() != req.WantsReply() {
			t.Fatalf("round trip: %v\n%s", err, out)
		}
	})
}

func FuzzPyRepr(f *testing.F) {
	for _, c := range reprCases {
		f.Add([]byte(c), 40)
	}
	f.Fuzz(func(t *testing.T, doc []byte, max int) {
		var v any
		if unmarshalNumber(doc, &v) != nil {
			return
		}
		s := PyRepr(v)
		if _, err := PyReprJSON(doc); err != nil {
			t.Fatalf("PyReprJSON failed on valid JSON %q: %v", doc, err)
		}
		// a string repr is a valid, unambiguous literal: quoted, no raw newline
		if str, ok := v.(string); ok {
			if (!strings.HasPrefix(s, "'") && !strings.HasPrefix(s, `"`)) || strings.ContainsAny(s, "\n\r") {
				t.Fatalf("PyRepr(%q) = %q", str, s)
			}
		}
		max = max%2000 + 1
		if max < 1 {
			max += 2000
		}
		sr := SafeRepr(v, max)
		if l, ok := v.([]any); ok {
			SafeReprArgs(l, max)
		}
		_ = json.Valid([]byte(sr))
	})
}

func FuzzParseISO(f *testing.F) {
	for _, s := range []string{"2024-05-01T12:00:00.123456+00:00", "2024-05-01", "2024-05-01 12:00Z", "2030-01-02T03:04:05-03:30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseISO(s)
		if err != nil {
			return
		}
		back, err := ParseISO(pyfmt.FormatISO(tm))
		if err != nil || !back.Equal(tm.Truncate(1000)) {
			t.Fatalf("ParseISO(pyfmt.FormatISO(%v)) = %v, %v", tm, back, err)
		}
	})
}
