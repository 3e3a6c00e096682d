package protocol

import (
	"bytes"
	"compress/zlib"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeEnvelopeLenient(t *testing.T) {
	tests := []struct {
		name, raw string
		check     func(t *testing.T, e *Envelope)
	}{
		{"nulls", `{"body": null, "content-type": null, "headers": null, "properties": {"priority": null, "delivery_info": null, "body_encoding": null}}`,
			func(t *testing.T, e *Envelope) {
				if e.Body != "" || e.Headers != nil || e.Properties.Priority != 0 || e.BadHeaders != nil {
					t.Errorf("%+v", e)
				}
			}},
		{"priority string", `{"body": "", "properties": {"priority": "7"}}`, func(t *testing.T, e *Envelope) {
			if e.Properties.Priority != 7 {
				t.Errorf("priority %d", e.Properties.Priority)
			}
		}},
		{"priority garbage", `{"body": "", "properties": {"priority": [1]}}`, func(t *testing.T, e *Envelope) {
			if e.Properties.Priority != 0 {
				t.Errorf("priority %d", e.Properties.Priority)
			}
		}},
		{"headers not object", `{"body": "", "headers": "x"}`, func(t *testing.T, e *Envelope) {
			if e.Headers != nil || string(e.BadHeaders) != `"x"` {
				t.Errorf("%+v", e)
			}
		}},
		{"extras kept", `{"body": "", "x-top": 1, "properties": {"expiration": "60000", "delivery_info": {"exchange": "e", "routing_key": "r", "priority": 3}}}`,
			func(t *testing.T, e *Envelope) {
				if string(e.Extra["x-top"]) != "1" || string(e.Properties.Extra["expiration"]) != `"60000"` ||
					string(e.Properties.DeliveryInfo.Extra["priority"]) != "3" {
					t.Errorf("%+v", e)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := DecodeEnvelope([]byte(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, e)
		})
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"body": 5}`, `{"properties": []}`, `{"properties": {"delivery_info": 3}}`, `null`} {
		if _, err := DecodeEnvelope([]byte(bad)); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("DecodeEnvelope(%q) err = %v", bad, err)
		}
	}
}

// TestEnvelopeRoundTrip re-encodes every captured envelope: all keys,
// including unknown ones, must survive with the same JSON values.
func TestEnvelopeRoundTrip(t *testing.T) {
	var files []string
	for _, d := range []string{"tasks", "pidbox", "events"} {
		files = append(files, fixtures(t, d)...)
	}
	for _, path := range files {
		raw := readFile(t, path)
		e, err := DecodeEnvelope(raw)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("%s: output not JSON: %v\n%s", path, err, out)
		}
		if mustJSON(t, a) != mustJSON(t, b) {
			t.Errorf("%s: round trip changed the envelope\n in: %s\nout: %s", path, raw, out)
		}
	}
}

func TestMarkRedelivered(t *testing.T) {
	raw := readFile(t, "testdata/tasks/v2_expires_seconds.json")
	out, err := MarkRedelivered(raw)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	_ = json.Unmarshal(raw, &a)
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	a["headers"].(map[string]any)["redelivered"] = true
	a["properties"].(map[string]any)["delivery_info"].(map[string]any)["redelivered"] = true
	if mustJSON(t, a) != mustJSON(t, b) {
		t.Errorf("MarkRedelivered changed more than the flags:\n%s", out)
	}
	// key order of the original is kept; the new keys come last
	if !bytes.HasPrefix(out, []byte(`{"body": `)) || !strings.Contains(string(out), `"ignore_result": false, "redelivered": true}`) ||
		!strings.Contains(string(out), `"expiration": "60000"`) {
		t.Errorf("order/extras lost: %s", out)
	}
	// idempotent
	again, err := MarkRedelivered(out)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("not idempotent: %v\n%s\n%s", err, out, again)
	}
	e, err := DecodeEnvelope(out)
	if err != nil || !e.Properties.DeliveryInfo.Redelivered || string(e.Headers["redelivered"]) != "true" {
		t.Errorf("decoded %+v, %v", e, err)
	}
	// missing headers/properties are created
	out, err = MarkRedelivered([]byte(`{"body": "x"}`))
	if err != nil || string(out) != `{"body": "x", "headers": {"redelivered": true}, "properties": {"delivery_info": {"redelivered": true}}}` {
		t.Errorf("got %s, %v", out, err)
	}
	for _, bad := range []string{`[]`, `{"headers": 5}`, `{"properties": {"delivery_info": []}}`, `{} x`} {
		if _, err := MarkRedelivered([]byte(bad)); !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("MarkRedelivered(%s) err = %v", bad, err)
		}
	}
}

func TestDecodeBody(t *testing.T) {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, _ = zw.Write([]byte(`[1]`))
	_ = zw.Close()
	tests := []struct {
		name, body, enc, comp, want string
		err                         error
	}{
		{"base64", base64Std([]byte(`[1, 2]`)), "base64", "", `[1, 2]`, nil},
		{"base64 upper", base64Std([]byte(`x`)), "BASE64", "", `x`, nil},
		{"base64 unpadded with newline", "e\nA", "base64", "", `x`, nil},
		{"plain", `{"a": 1}`, "", "", `{"a": 1}`, nil},
		{"utf-8", `[1]`, "utf-8", "", `[1]`, nil},
		{"zlib", base64Std(z.Bytes()), "base64", "application/x-gzip", `[1]`, nil},
		{"zlib alias", base64Std(z.Bytes()), "base64", "zlib", `[1]`, nil},
		{"lzma", base64Std([]byte("x")), "base64", "application/x-lzma", "", ErrUnsupportedEncoding},
		{"unknown body encoding", "x", "rot13", "", "", ErrUnsupportedEncoding},
		{"bad zlib", base64Std([]byte("nope")), "base64", "application/x-gzip", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &Envelope{Body: tc.body, Properties: Properties{BodyEncoding: tc.enc}}
			if tc.comp != "" {
				_ = e.SetHeader("compression", tc.comp)
			}
			got, err := e.DecodeBody()
			if tc.want == "" {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	// the captured compressed messages
	for _, name := range []string{"v2_compressed_zlib", "v2_compressed_bz2"} {
		e, err := DecodeEnvelope(readFile(t, "testdata/tasks/"+name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.DecodeBody()
		if err != nil || !bytes.HasPrefix(b, []byte(`[["`)) {
			t.Errorf("%s: %q, %v", name, b, err)
		}
	}
}
