package protocol

import (
	"encoding/json"
	"reflect"
	"testing"
)

// stampedEnvelope is a celery 5.5 message stamped by a visitor
// ({"mtask_id": "m1", "tags": ["a", "b"]}), headers as AMQP.as_task_v2
// writes them.
func stampedEnvelope(t *testing.T, stampedHeaders, stamps string) *Envelope {
	t.Helper()
	msg := &TaskMessage{Version: 2, ID: "t1", RootID: "t1", Task: "diag.echo", Args: []any{}, Kwargs: map[string]any{},
		Headers: map[string]json.RawMessage{"stamped_headers": json.RawMessage(stampedHeaders), "stamps": json.RawMessage(stamps)}}
	raw, err := EncodeTask(msg, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestStampedHeadersDecodeAndRetryKeepsThem(t *testing.T) {
	env := stampedEnvelope(t, `["mtask_id", "tags"]`, `{"mtask_id": "m1", "tags": ["a", "b"]}`)
	msg, err := DecodeTask(env)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.StampedHeaders(); !reflect.DeepEqual(got, []string{"mtask_id", "tags"}) {
		t.Errorf("StampedHeaders = %v", got)
	}
	want := map[string]any{"mtask_id": "m1", "tags": []any{"a", "b"}}
	if got := msg.StampValues(); !reflect.DeepEqual(got, want) {
		t.Errorf("StampValues = %v", got)
	}
	// The retry path (EncodeTask of the decoded message) keeps both
	// headers as celery's signature_from_request + as_task_v2 do.
	msg.Retries++
	raw, err := EncodeTask(msg, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env2, _ := DecodeEnvelope(raw)
	msg2, err := DecodeTask(env2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(msg2.StampValues(), want) || msg2.Retries != 1 {
		t.Errorf("after retry: %v %v", msg2.StampValues(), msg2.Headers)
	}
}

func TestUnstampedMessages(t *testing.T) {
	// celery 5.5 sends null/{} on every message.
	msg, err := DecodeTask(stampedEnvelope(t, `null`, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.StampedHeaders() != nil || msg.StampValues() != nil {
		t.Errorf("unstamped: %v %v", msg.StampedHeaders(), msg.StampValues())
	}
	raw, _ := EncodeTask(msg, PublishOptions{})
	env, _ := DecodeEnvelope(raw)
	h := env.Headers
	if string(h["stamped_headers"]) != "null" || string(h["stamps"]) != "{}" {
		t.Errorf("retry of an unstamped 5.5 message: stamped_headers=%s stamps=%s", h["stamped_headers"], h["stamps"])
	}
	var nilMsg *TaskMessage
	if nilMsg.StampedHeaders() != nil {
		t.Error("nil message")
	}
}

func TestStampsFromOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    map[string]any
		headers []string
		stamps  map[string]any
	}{
		{"unstamped", map[string]any{"queue": "q"}, nil, map[string]any{}},
		{"stamped", map[string]any{"queue": "q", "stamped_headers": []any{"m", "n"}, "m": "1", "n": []any{"x"}},
			[]string{"m", "n"}, map[string]any{"m": "1", "n": []any{"x"}}},
		{"single name", map[string]any{"stamped_headers": "m", "m": "1"}, []string{"m"}, map[string]any{"m": "1"}},
		{"missing value", map[string]any{"stamped_headers": []any{"m"}}, []string{"m"}, map[string]any{"m": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, s := StampsFromOptions(tc.opts)
			if !reflect.DeepEqual(h, tc.headers) || !reflect.DeepEqual(s, tc.stamps) {
				t.Errorf("got %v %v", h, s)
			}
		})
	}
	opts := map[string]any{"queue": "q", "stamped_headers": []any{"m"}, "m": "1"}
	for k, want := range map[string]bool{"queue": false, "stamped_headers": true, "m": true, "n": false} {
		if IsStampOption(opts, k) != want {
			t.Errorf("IsStampOption(%q) != %v", k, want)
		}
	}
}

func TestStampMatches(t *testing.T) {
	n := func(s string) any { return json.Number(s) }
	for _, tc := range []struct {
		stamp, revoked any
		want           bool
		matching       []any
	}{
		{"a", "a", true, []any{"a"}},
		{"a", []any{"b", "a"}, true, []any{"a"}},
		{"a", "b", false, nil},
		{[]any{"x", "a"}, []any{"a"}, true, []any{"a"}},
		{[]any{"x", "y"}, "a", false, nil},
		{n("1"), n("1.0"), true, []any{n("1")}},
		{"1", n("1"), false, nil},
		{nil, "a", false, nil},
	} {
		if got := StampMatches(tc.stamp, tc.revoked); got != tc.want {
			t.Errorf("StampMatches(%v, %v) = %v", tc.stamp, tc.revoked, got)
		}
		if got := MatchingStamps(tc.stamp, tc.revoked); !reflect.DeepEqual(got, tc.matching) {
			t.Errorf("MatchingStamps(%v, %v) = %v", tc.stamp, tc.revoked, got)
		}
	}
}
