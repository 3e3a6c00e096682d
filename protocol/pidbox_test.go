package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestDecodeControlRequestGolden(t *testing.T) {
	for _, path := range fixtures(t, "pidbox") {
		name := fixtureName(path)
		t.Run(name, func(t *testing.T) {
			env, err := DecodeEnvelope(readFile(t, path))
			if err != nil {
				t.Fatal(err)
			}
			req, err := DecodeControlRequest(env)
			if err != nil {
				t.Fatal(err)
			}
			if req.Clock == 0 || req.Expires == 0 {
				t.Errorf("headers not read: %+v", req)
			}
			v := map[string]any{"Method": req.Method, "Arguments": req.Arguments, "Destination": req.Destination,
				"Pattern": req.Pattern, "Matcher": req.Matcher, "WantsReply": req.WantsReply(),
				"ReplyExchange": "", "ForA": req.AddressedTo("celery@a"), "ForX": req.AddressedTo("other@x")}
			if req.ReplyTo != nil {
				v["ReplyExchange"] = req.ReplyTo.Exchange
			}
			golden(t, "pidbox/"+name, v)
		})
	}
}

func TestAddressedTo(t *testing.T) {
	tests := []struct {
		req  ControlRequest
		node string
		want bool
	}{
		{ControlRequest{}, "celery@h", true},
		{ControlRequest{Destination: []string{"celery@a", "celery@b"}}, "celery@b", true},
		{ControlRequest{Destination: []string{"celery@a"}}, "celery@b", false},
		{ControlRequest{Destination: []string{"celery@a"}, Pattern: "*", Matcher: "glob"}, "celery@b", false},
		{ControlRequest{Pattern: "celery@*", Matcher: "glob"}, "celery@worker1", true},
		{ControlRequest{Pattern: "celery@*", Matcher: "glob"}, "other@worker1", false},
		{ControlRequest{Pattern: "w?rker@[a-c]", Matcher: "glob"}, "worker@b", true},
		{ControlRequest{Pattern: "worker@[!a-c]", Matcher: "glob"}, "worker@b", false},
		{ControlRequest{Pattern: "worker@[!a-c]", Matcher: "glob"}, "worker@d", true},
		{ControlRequest{Pattern: "a.b", Matcher: "glob"}, "axb", false},
		{ControlRequest{Pattern: "[x", Matcher: "glob"}, "[x", true},
		{ControlRequest{Pattern: "celery@w.*", Matcher: "pcre"}, "celery@worker1", true},
		{ControlRequest{Pattern: "worker", Matcher: "pcre"}, "celery@worker1", false}, // re.match anchors at start
		{ControlRequest{Pattern: "celery", Matcher: "pcre"}, "celery@worker1", true},
		{ControlRequest{Pattern: "(", Matcher: "pcre"}, "x", false},
		{ControlRequest{Pattern: "x", Matcher: "nope"}, "x", false},
		{ControlRequest{Pattern: "x"}, "y", true}, // pattern without matcher: everyone
	}
	for _, tc := range tests {
		if got := tc.req.AddressedTo(tc.node); got != tc.want {
			t.Errorf("%+v AddressedTo(%q) = %v", tc.req, tc.node, got)
		}
	}
}

func TestControlRoundTrip(t *testing.T) {
	req := &ControlRequest{Method: "revoke", Arguments: map[string]any{"task_id": []any{"a"}, "terminate": true},
		Destination: []string{"celery@go"}, Ticket: "tk", ReplyTo: &ReplyTo{Exchange: ReplyExchange, RoutingKey: "oid"},
		Clock: 7, Expires: 1714567891.5}
	raw, err := EncodeControlRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	env, err := DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	if env.Properties.DeliveryInfo.Exchange != PidboxExchange || env.Properties.DeliveryMode != 2 {
		t.Errorf("properties %+v", env.Properties)
	}
	got, err := DecodeControlRequest(env)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "revoke" || got.Ticket != "tk" || got.ReplyTo.RoutingKey != "oid" || got.Clock != 7 ||
		got.Expires != req.Expires || !got.AddressedTo("celery@go") || got.AddressedTo("celery@py") {
		t.Errorf("%+v", got)
	}
	cast, _ := EncodeControlRequest(&ControlRequest{Method: "enable_events"})
	env, _ = DecodeEnvelope(cast)
	got, _ = DecodeControlRequest(env)
	if got.WantsReply() || got.ReplyTo != nil || len(got.Arguments) != 0 {
		t.Errorf("cast %+v", got)
	}

	reply, err := EncodeControlReply("celery@go", "tk", *req.ReplyTo, map[string]any{"revoked": map[string]any{"a": []any{123.0, "a"}}, "clock": 9}, 8)
	if err != nil {
		t.Fatal(err)
	}
	env, err = DecodeEnvelope(reply)
	if err != nil {
		t.Fatal(err)
	}
	if env.Properties.DeliveryMode != 1 || env.Properties.DeliveryInfo.Exchange != ReplyExchange || env.Properties.DeliveryInfo.RoutingKey != "oid" ||
		string(env.Headers["clock"]) != "8" || env.HeaderString("ticket") != "tk" {
		t.Errorf("reply envelope %s", reply)
	}
	body, _ := env.DecodeBody()
	if string(body) != `{"celery@go": {"clock":9,"revoked":{"a":[123.0,"a"]}}}` {
		t.Errorf("reply body %s (hello timestamps must stay floats)", body)
	}
	node, value, ticket, err := DecodeControlReply(env)
	if err != nil || node != "celery@go" || ticket != "tk" || value.(map[string]any)["clock"] != json.Number("9") {
		t.Errorf("%q %v %q %v", node, value, ticket, err)
	}
}

func TestDecodeControlRequestErrors(t *testing.T) {
	mk := func(ct, body string) *Envelope {
		return &Envelope{ContentType: ct, Body: base64Std([]byte(body)), Properties: Properties{BodyEncoding: "base64"}}
	}
	tests := []struct {
		env  *Envelope
		want error
	}{
		{mk("application/x-python-serialize", "x"), ErrContentDisallowed},
		{mk("application/json", "{"), ErrUndecodable},
		{mk("application/json", "[]"), ErrInvalidControl},
		{mk("application/json", `{"arguments": {}}`), ErrInvalidControl},
		{mk("application/json", `{"method": "ping", "arguments": []}`), ErrInvalidControl},
		{mk("application/json", `{"method": "ping", "destination": 5}`), ErrInvalidControl},
		{mk("application/json", `{"method": "ping", "reply_to": "x"}`), ErrInvalidControl},
		{nil, ErrInvalidControl},
	}
	for i, tc := range tests {
		if _, err := DecodeControlRequest(tc.env); !errors.Is(err, tc.want) {
			t.Errorf("%d: err = %v, want %v", i, err, tc.want)
		}
	}
	r, err := DecodeControlRequest(mk("application/json", `{"method": "ping", "destination": "celery@a"}`))
	if err != nil || len(r.Destination) != 1 {
		t.Errorf("string destination: %+v %v", r, err)
	}
}
