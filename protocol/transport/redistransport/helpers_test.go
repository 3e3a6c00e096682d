package redistransport

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
)

// Integration tests use the shared Redis (testenv.RedisAddr), only this
// package's databases (testenv's table), and a unique global key prefix
// and queue names per test; they never FLUSHDB.
const (
	brokerDB  = testenv.RedisDBTransport
	resultsDB = testenv.RedisDBTransportResults
	otherDB   = testenv.RedisDBTransportOther
)

const testAddr = testenv.RedisAddr

// testURL is the URL of db, one of the databases above.
func testURL(db int) string { return testenv.RedisURL(db) }

// uniq returns a per-test unique name fragment.
func uniq(t testing.TB) string {
	return strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())) + "-" + pyfmt.NewUUID4().String()[:8]
}

// rawConn is a plain connection on db for assertions; keys with prefix are
// deleted when the test ends.
func rawConn(t testing.TB, db int, prefix string) redis.Conn {
	t.Helper()
	c, err := redis.Dial("tcp", testAddr, redis.DialDatabase(db))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		if prefix != "" {
			keys, _ := redis.Strings(c.Do("KEYS", escapeGlob(prefix)+"*"))
			for _, k := range keys {
				_, _ = c.Do("DEL", k)
			}
		}
		c.Close()
	})
	return c
}

func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}

// newTestBroker returns a broker on db with a unique global key prefix, a
// raw connection and the prefix.
func newTestBroker(t testing.TB, db int, cfg Config) (*Broker, redis.Conn, string) {
	t.Helper()
	return openTest(t, db, &cfg.GlobalKeyPrefix, func() (*Broker, error) { return NewBroker(testURL(db), cfg) })
}

// openTest opens a broker or backend on db with *prefix (a unique one
// when empty), closed at cleanup; it returns it, a raw connection and the
// prefix.
func openTest[C interface{ Close() error }](t testing.TB, db int, prefix *string, open func() (C, error)) (C, redis.Conn, string) {
	t.Helper()
	testenv.NeedRedis(t, db)
	if *prefix == "" {
		*prefix = "omt-" + uniq(t) + ":"
	}
	c, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rawConn(t, db, *prefix), *prefix
}

type envOpts struct {
	tag, exchange, rk string
	priority          int
	noTag, noInfo     bool
	body              string
}

// envelope builds a kombu envelope like celery 5.5 publishes.
func envelope(o envOpts) []byte {
	if o.body == "" {
		o.body = `[[2, 2], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`
	}
	props := map[string]any{
		"correlation_id": "c-" + o.tag,
		"reply_to":       "",
		"delivery_mode":  2,
		"priority":       o.priority,
		"body_encoding":  "base64",
	}
	if !o.noInfo {
		props["delivery_info"] = map[string]any{"exchange": o.exchange, "routing_key": o.rk}
	}
	if !o.noTag {
		props["delivery_tag"] = o.tag
	}
	env := map[string]any{
		"body":             base64.StdEncoding.EncodeToString([]byte(o.body)),
		"content-encoding": "utf-8",
		"content-type":     "application/json",
		"headers":          map[string]any{"lang": "py", "task": "tasks.add", "id": "c-" + o.tag, "eta": nil, "timelimit": []any{nil, nil}, "retries": 0},
		"properties":       props,
	}
	raw, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return raw
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// unackedRecord returns the decoded HGET unacked <tag> value.
func unackedRecord(t testing.TB, c redis.Conn, prefix, tag string) (env json.RawMessage, ex, rk string, ok bool) {
	t.Helper()
	v, err := redis.Bytes(c.Do("HGET", prefix+"unacked", tag))
	if errors.Is(err, redis.ErrNil) {
		return nil, "", "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(v, &parts); err != nil || len(parts) != 3 {
		t.Fatalf("unacked value is not a 3-element JSON array: %s (%v)", v, err)
	}
	if err := json.Unmarshal(parts[1], &ex); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if err := json.Unmarshal(parts[2], &rk); err != nil {
		t.Fatalf("routing key: %v", err)
	}
	return parts[0], ex, rk, true
}

// redelivered reports headers.redelivered and delivery_info.redelivered.
func redelivered(t testing.TB, raw []byte) (h, di bool) {
	t.Helper()
	var m struct {
		Headers    map[string]any `json:"headers"`
		Properties struct {
			DeliveryInfo map[string]any `json:"delivery_info"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("bad envelope %s: %v", raw, err)
	}
	return m.Headers["redelivered"] == true, m.Properties.DeliveryInfo["redelivered"] == true
}

func tagOf(t testing.TB, raw []byte) string {
	t.Helper()
	env, err := protocol.DecodeEnvelope(raw)
	if err != nil {
		t.Fatal(err)
	}
	return env.Properties.DeliveryTag
}

// sameExceptRedelivered compares two envelopes ignoring the redelivered
// flags.
func sameExceptRedelivered(t testing.TB, a, b []byte) bool {
	t.Helper()
	strip := func(raw []byte) string {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		if h, ok := m["headers"].(map[string]any); ok {
			delete(h, "redelivered")
		}
		if p, ok := m["properties"].(map[string]any); ok {
			if di, ok := p["delivery_info"].(map[string]any); ok {
				delete(di, "redelivered")
			}
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	return strip(a) == strip(b)
}
