package protocol

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestUTCOffsetHours(t *testing.T) {
	tests := []struct {
		east int
		want int
	}{
		{0, 0}, {2 * 3600, -2}, {-5 * 3600, 5}, {5*3600 + 1800, -6}, {-(3*3600 + 1800), 3}, {14 * 3600, -14}, {1, -1},
	}
	for _, tc := range tests {
		tm := time.Date(2024, 5, 1, 0, 0, 0, 0, time.FixedZone("", tc.east))
		if got := UTCOffsetHours(tm); got != tc.want {
			t.Errorf("offset %ds: got %d, want %d", tc.east, got, tc.want)
		}
	}
}

// TestEncodeEventLikePython encodes the events the capture script sent
// through celery's EventDispatcher and compares envelopes and bodies.
func TestEncodeEventLikePython(t *testing.T) {
	for _, path := range fixtures(t, "events") {
		t.Run(fixtureName(path), func(t *testing.T) {
			pyEnv, err := DecodeEnvelope(readFile(t, path))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := DecodeEvents(pyEnv)
			if err != nil || len(evs) != 1 {
				t.Fatalf("%v %v", evs, err)
			}
			pyBody := evs[0]
			fields := map[string]any{}
			for k, v := range pyBody {
				fields[k] = v
			}
			if f, ok := fields["freq"].(json.Number); ok {
				x, _ := f.Float64()
				fields["freq"] = x // a Go caller passes a float64
			}
			host := pyEnv.HeaderString("hostname")
			raw, err := EncodeEvent(host, fields)
			if err != nil {
				t.Fatal(err)
			}
			goEnv, err := DecodeEnvelope(raw)
			if err != nil {
				t.Fatal(err)
			}
			pp, gp := pyEnv.Properties, goEnv.Properties
			pp.DeliveryTag, gp.DeliveryTag = "", ""
			if mustJSON(t, pp) != mustJSON(t, gp) || mustJSON(t, pyEnv.Headers) != mustJSON(t, goEnv.Headers) ||
				pyEnv.ContentType != goEnv.ContentType || pyEnv.ContentEncoding != goEnv.ContentEncoding {
				t.Errorf("envelope differs:\n py %s\n go %s", readFile(t, path), raw)
			}
			pyRaw, _ := pyEnv.DecodeBody()
			goRaw, _ := goEnv.DecodeBody()
			pk, gk := keyOrder(t, pyRaw), keyOrder(t, goRaw)
			if pk[0] != gk[0] || pk[len(pk)-1] != gk[len(gk)-1] || pk[len(pk)-2] != gk[len(gk)-2] || len(pk) != len(gk) {
				t.Errorf("body keys %v, Python %v", gk, pk)
			}
			goEvs, _ := DecodeEvents(goEnv)
			if mustJSON(t, goEvs[0]) != mustJSON(t, pyBody) {
				t.Errorf("body\n go %s\n py %s", goRaw, pyRaw)
			}
		})
	}
}

func TestEncodeEventDefaults(t *testing.T) {
	raw, err := EncodeEvent("celery@go", map[string]any{"type": "worker-heartbeat", "freq": 2.0, "clock": 3, "loadavg": []float64{0.5, 1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := DecodeEnvelope(raw)
	if got := DefaultNames(0).EventChannel("worker-heartbeat"); got != "/0.celeryev/"+env.Properties.DeliveryInfo.RoutingKey {
		t.Errorf("routing key %q", env.Properties.DeliveryInfo.RoutingKey)
	}
	body, _ := env.DecodeBody()
	o, _ := parseObject(body)
	for _, k := range []string{"hostname", "utcoffset", "pid", "clock", "freq", "loadavg", "timestamp", "type"} {
		if _, ok := o.get(k); !ok {
			t.Errorf("missing %s in %s", k, body)
		}
	}
	if f, _ := o.get("freq"); string(f) != "2.0" {
		t.Errorf("freq %s", f)
	}
	if l, _ := o.get("loadavg"); string(l) != "[0.5,1.0,0.0]" {
		t.Errorf("loadavg %s", l)
	}
	if _, err := EncodeEvent("h", map[string]any{"uuid": "x"}); !errors.Is(err, ErrBadEvent) {
		t.Errorf("no type: %v", err)
	}
	batch := &Envelope{ContentType: ContentTypeJSON, Body: `[{"type": "task-started"}, {"type": "task-succeeded"}]`}
	if evs, err := DecodeEvents(batch); err != nil || len(evs) != 2 {
		t.Errorf("batch: %v %v", evs, err)
	}
}
