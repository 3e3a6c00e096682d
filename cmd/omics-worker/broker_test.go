package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
)

// TestParseTransportOptions: the one parse of broker_transport_options
// keeps the object for the AMQP transport.
func TestParseTransportOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"", 0, false}, {"  ", 0, false},
		{`{"master_name":"mymaster","eta_park_after":60}`, 2, false},
		{"null", 0, true}, {`[1]`, 0, true}, {`{`, 0, true}, {`{} {}`, 0, true},
	} {
		o, err := redisTransportOptionsParse(tc.in, false)
		if (err != nil) != tc.fail || (err == nil && len(o.keys) != tc.n) {
			t.Errorf("%q: %v %v", tc.in, o.keys, err)
		}
	}
}

// TestBrokerSchemeSelection: amqp URLs select the AMQP transport, and the
// env var / flag feed broker_transport_options.
func TestBrokerSchemeSelection(t *testing.T) {
	env := map[string]string{"CELERY_BROKER_URL": "pyamqp://guest@h//",
		"CELERY_BROKER_TRANSPORT_OPTIONS": `{"max_priority": 10, "eta_park_after": 0}`}
	o, code := parseWorkerOptions(nil, io.Discard, func(k string) string { return env[k] })
	if o == nil {
		t.Fatalf("exit %d", code)
	}
	if !isAMQP(o.brokerURL) || isAMQP("redis://h/0") || isAMQP("sentinel://h:26379") {
		t.Fatal("scheme selection")
	}
	cfg, err := workerConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := amqpConfig(o, cfg, discardLogger())
	if err != nil || ac.MaxPriority != 10 || ac.ETAParkAfter >= 0 {
		t.Fatalf("%+v %v", ac, err)
	}
	o, _ = parseWorkerOptions([]string{"--broker-transport-options", `{"max_priority": 5}`}, io.Discard,
		func(k string) string { return env[k] })
	if ac, err := amqpConfig(o, cfg, discardLogger()); err != nil || ac.MaxPriority != 5 || ac.ETAParkAfter != 0 {
		t.Fatalf("flag: %+v %v", ac, err)
	}
	for _, bad := range []string{`{"max_priority": "5"}`, `{"passive_declare": "yes"}`} {
		o, _ = parseWorkerOptions([]string{"--broker-transport-options", bad}, io.Discard,
			func(k string) string { return env[k] })
		if _, err := amqpConfig(o, cfg, discardLogger()); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	o, _ = parseWorkerOptions([]string{"--broker-transport-options", `{"queue_type": "quorum", "passive_declare": true, "heartbeat": null}`},
		io.Discard, func(k string) string { return env[k] })
	if ac, err := amqpConfig(o, cfg, discardLogger()); err != nil || ac.QueueType != "quorum" || !ac.PassiveDeclare || ac.Heartbeat != 0 {
		t.Fatalf("queue_type/passive_declare: %+v %v", ac, err)
	}
	if o, _ := parseWorkerOptions(nil, io.Discard, func(k string) string {
		return map[string]string{"CELERY_BROKER_TRANSPORT_OPTIONS": "{"}[k]
	}); o != nil {
		t.Fatal("bad JSON accepted")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestMaskedTransportOptions: `inspect stats` never shows a secret given
// in the broker transport options.
func TestMaskedTransportOptions(t *testing.T) {
	in := map[string]json.RawMessage{
		"max_priority":    json.RawMessage(`10`),
		"sentinel_kwargs": json.RawMessage(`{"password": "` + masktest.Password + `"}`),
		"Password":        json.RawMessage(`"` + masktest.Password + `"`),
	}
	out := maskedTransportOptions(in)
	b, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	masktest.Check(t, "transport options", string(b))
	if string(out["max_priority"]) != "10" || string(out["sentinel_kwargs"]) != `"**"` || len(out) != 3 {
		t.Errorf("masked options: %s", b)
	}
}

// TestReplySpinFlag: --reply-spin not given leaves the transport's default
// (0), a value is passed on, 0 turns the polling off (-1).
func TestReplySpinFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"--reply-spin", "250us"}, 250 * time.Microsecond},
		{[]string{"--reply-spin", "0"}, -1},
	} {
		o, code := parseWorkerOptions(tt.args, io.Discard, func(string) string { return "" })
		if code != 0 {
			t.Fatalf("%v: exit %d", tt.args, code)
		}
		if got := o.replySpinConfig(); got != tt.want {
			t.Errorf("%v: ReplySpin %v, want %v", tt.args, got, tt.want)
		}
	}
}
