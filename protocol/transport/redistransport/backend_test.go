package redistransport

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

func newTestBackend(t testing.TB, db int, cfg Config) (*ResultBackend, redis.Conn, string) {
	t.Helper()
	return openTest(t, db, &cfg.ResultKeyPrefix, func() (*ResultBackend, error) { return NewResultBackend(testURL(db), cfg) })
}

// subscribe SUBSCRIBEs (plain, as AsyncResult does) to channel on db and
// returns a function reading the next message.
func subscribe(t testing.TB, db int, channel string) func() string {
	t.Helper()
	c, err := redis.Dial("tcp", testAddr, redis.DialDatabase(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	psc := redis.PubSubConn{Conn: c}
	if err := psc.Subscribe(channel); err != nil {
		t.Fatal(err)
	}
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("no subscription confirmation")
	}
	return func() string {
		switch v := psc.ReceiveWithTimeout(10 * time.Second).(type) {
		case redis.Message:
			return string(v.Data)
		case error:
			t.Fatalf("receive: %v", v)
		}
		return ""
	}
}

func TestStoreNeverOverwritesSuccess(t *testing.T) {
	r, c, pfx := newTestBackend(t, resultsDB, Config{})
	id := pyfmt.NewUUID4().String()
	key := pfx + "celery-task-meta-" + id
	if r.Key(id) != key {
		t.Fatalf("Key = %q, want %q", r.Key(id), key)
	}
	next := subscribe(t, resultsDB, key)
	ctx := ctxT(t)

	started := `{"status": "STARTED", "result": {"pid": 1, "hostname": "celery@x"}, "traceback": null, "children": [], "date_done": null, "task_id": "` + id + `"}`
	success := `{"status": "SUCCESS", "result": 4, "traceback": null, "children": [], "date_done": "2024-05-01T12:00:01.234567+00:00", "task_id": "` + id + `"}`
	failure := `{"status": "FAILURE", "result": {"exc_type": "ValueError", "exc_message": ["x"], "exc_module": "builtins"}, "traceback": null, "children": [], "date_done": "2024-05-01T12:00:02+00:00", "task_id": "` + id + `"}`

	for _, tt := range []struct {
		meta   string
		stored bool
		want   string
	}{
		{started, true, started},
		{success, true, success},
		{failure, false, success},
		{started, false, success},
	} {
		stored, err := r.StoreRaw(ctx, id, []byte(tt.meta))
		if err != nil || stored != tt.stored {
			t.Fatalf("StoreRaw = %v, %v; want %v", stored, err, tt.stored)
		}
		if v, _ := redis.String(c.Do("GET", key)); v != tt.want {
			t.Errorf("GET = %s\nwant %s", v, tt.want)
		}
		if ttl, _ := redis.Int(c.Do("TTL", key)); ttl < 86390 || ttl > 86400 {
			t.Errorf("TTL = %d, want ≈86400", ttl)
		}
		if !tt.stored {
			continue
		}
		if got := next(); got != tt.meta {
			t.Errorf("published %s\nwant %s", got, tt.meta)
		}
	}
	// Nothing was published by the refused writes: the next message on the
	// channel is our marker.
	if _, err := c.Do("PUBLISH", key, "marker"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "marker" {
		t.Errorf("a refused write published %s", got)
	}
}

func TestStoreMetaAndGet(t *testing.T) {
	r, c, _ := newTestBackend(t, resultsDB, Config{ResultExpires: 90 * time.Second})
	id := pyfmt.NewUUID4().String()
	ctx := ctxT(t)
	m, err := r.Get(ctx, id)
	if err != nil || m.Status != protocol.StatePending || m.TaskID != id {
		t.Fatalf("Get missing = %+v, %v", m, err)
	}
	done := time.Date(2024, 5, 1, 12, 0, 1, 234567000, time.UTC)
	meta := &protocol.ResultMeta{Status: protocol.StateSuccess, Result: 4, DateDone: &done, TaskID: id}
	if err := r.Store(ctx, meta); err != nil {
		t.Fatal(err)
	}
	raw, _ := redis.Bytes(c.Do("GET", r.Key(id)))
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil || obj["status"] != "SUCCESS" || obj["task_id"] != id {
		t.Fatalf("stored %s (%v)", raw, err)
	}
	if ttl, _ := redis.Int(c.Do("TTL", r.Key(id))); ttl < 80 || ttl > 90 {
		t.Errorf("TTL = %d, want ≈90", ttl)
	}
	got, err := r.Get(ctx, id)
	if err != nil || got.Status != protocol.StateSuccess || got.TaskID != id {
		t.Errorf("Get = %+v, %v", got, err)
	}
}

func TestStoreNoExpiry(t *testing.T) {
	r, c, _ := newTestBackend(t, resultsDB, Config{ResultExpires: -1})
	id := pyfmt.NewUUID4().String()
	if _, err := r.StoreRaw(ctxT(t), id, []byte(`{"status": "PROGRESS", "result": {}, "task_id": "`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := redis.Int(c.Do("TTL", r.Key(id))); ttl != -1 {
		t.Errorf("TTL = %d, want -1 (no expiry)", ttl)
	}
}

func TestResultKeyPrefix(t *testing.T) {
	for _, tt := range []struct{ prefix, sep string }{{"pfx", "_"}, {"pfx:", ""}, {"pfx-", ""}} {
		t.Run(tt.prefix, func(t *testing.T) {
			p := "omt" + uniq(t) + tt.prefix
			r, c, _ := newTestBackend(t, resultsDB, Config{ResultKeyPrefix: p})
			id := pyfmt.NewUUID4().String()
			want := p + tt.sep + "celery-task-meta-" + id
			if r.Key(id) != want {
				t.Fatalf("Key = %q, want %q", r.Key(id), want)
			}
			if _, err := r.StoreRaw(ctxT(t), id, []byte(`{"status":"STARTED"}`)); err != nil {
				t.Fatal(err)
			}
			if n, _ := redis.Int(c.Do("EXISTS", want)); n != 1 {
				t.Error("prefixed key missing")
			}
			c.Do("DEL", want)
		})
	}
}

func TestStoreAndAck(t *testing.T) {
	for _, tt := range []struct {
		name      string
		resultDB  int
		useBroker bool
	}{
		{"same-db", brokerDB, true},
		{"other-db", otherDB, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, bc, pfx := newTestBroker(t, brokerDB, Config{})
			r, rc, _ := newTestBackend(t, tt.resultDB, Config{})
			r.UseBroker(b)
			q := "q-" + uniq(t)
			if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: "sa", rk: q})); err != nil {
				t.Fatal(err)
			}
			d, err := b.Fetch(ctxT(t), []string{q}, -1)
			if err != nil || d == nil {
				t.Fatal(d, err)
			}
			id := pyfmt.NewUUID4().String()
			next := subscribe(t, tt.resultDB, r.Key(id))
			meta := &protocol.ResultMeta{Status: protocol.StateSuccess, Result: "ok", TaskID: id}
			if err := r.StoreAndAck(ctxT(t), meta, d); err != nil {
				t.Fatal(err)
			}
			if _, _, _, ok := unackedRecord(t, bc, pfx, "sa"); ok {
				t.Error("not acked")
			}
			if v, _ := bc.Do("ZSCORE", pfx+"unacked_index", "sa"); v != nil {
				t.Error("index not cleared")
			}
			if v, _ := redis.Bytes(rc.Do("GET", r.Key(id))); v == nil {
				t.Errorf("result not stored in db %d", tt.resultDB)
			}
			if tt.resultDB != brokerDB {
				if n, _ := redis.Int(bc.Do("EXISTS", r.Key(id))); n != 0 {
					t.Error("result stored in the broker db")
				}
			}
			if got := next(); got == "" {
				t.Error("nothing published")
			}
			// Later writes on the other connection's DB still go to the
			// broker DB (the script's SELECT did not leak).
			if err := b.Publish(ctxT(t), q, 0, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
			if n, _ := redis.Int(bc.Do("LLEN", pfx+q)); n != 1 {
				t.Errorf("broker connection DB changed: LLEN = %d", n)
			}
		})
	}
}
