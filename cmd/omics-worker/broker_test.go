package main

import (
	"io"
	"log/slog"
	"testing"
)

func TestParseTransportOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"", 0, false}, {"  ", 0, false}, {"null", 0, false},
		{`{"master_name":"mymaster","eta_park_after":60}`, 2, false},
		{`[1]`, 0, true}, {`{`, 0, true},
	} {
		m, err := parseTransportOptions(tc.in)
		if (err != nil) != tc.fail || (err == nil && len(m) != tc.n) {
			t.Errorf("%q: %v %v", tc.in, m, err)
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
	if o.transportOptions["max_priority"] != 5.0 {
		t.Fatalf("flag: %v", o.transportOptions)
	}
	if o, _ := parseWorkerOptions(nil, io.Discard, func(k string) string {
		return map[string]string{"CELERY_BROKER_TRANSPORT_OPTIONS": "{"}[k]
	}); o != nil {
		t.Fatal("bad JSON accepted")
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
