package redistransport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
)

const sep = "\x06\x16"

// fetchPaths runs a test once with the script path and once with the BRPOP
// path (popBlocking with data already present, so it returns at once).
var fetchPaths = []struct {
	name  string
	fetch func(b *Broker, t *testing.T, queues []string) *protocol.Delivery
}{
	{"script", func(b *Broker, t *testing.T, queues []string) *protocol.Delivery {
		d, err := b.Fetch(ctxT(t), queues, -1)
		if err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		return d
	}},
	{"brpop", func(b *Broker, t *testing.T, queues []string) *protocol.Delivery {
		b.fetchMu.Lock()
		defer b.fetchMu.Unlock()
		d, err := b.popBlocking(ctxT(t), b.order(queues), 100*time.Millisecond)
		if err != nil {
			t.Fatalf("popBlocking: %v", err)
		}
		return d
	}},
}

func TestFetchRecordsUnacked(t *testing.T) {
	for _, p := range fetchPaths {
		t.Run(p.name, func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			q := "q-" + uniq(t)
			raw := envelope(envOpts{tag: "tag-1", rk: q})
			if err := b.Publish(ctxT(t), q, 0, raw); err != nil {
				t.Fatal(err)
			}
			before := float64(time.Now().UnixNano()) / 1e9
			d := p.fetch(b, t, []string{q})
			after := float64(time.Now().UnixNano()) / 1e9
			if d == nil {
				t.Fatal("no delivery")
			}
			if d.Queue != q || d.Tag != "tag-1" || !bytes.Equal(d.Raw, raw) || d.Envelope == nil || d.DecodeErr != nil {
				t.Fatalf("delivery = %+v", d)
			}
			env, ex, rk, ok := unackedRecord(t, c, pfx, "tag-1")
			if !ok {
				t.Fatal("no unacked record")
			}
			if !bytes.Equal(env, raw) || ex != "" || rk != q {
				t.Errorf("unacked = [%s, %q, %q]", env, ex, rk)
			}
			// The value is exactly '[<raw>, "", "<q>"]' (JSON-equivalent to
			// Python's json.dumps of the list).
			v, _ := redis.String(c.Do("HGET", pfx+"unacked", "tag-1"))
			if want := "[" + string(raw) + `, "", "` + q + `"]`; v != want {
				t.Errorf("HGET unacked = %s\nwant %s", v, want)
			}
			score, err := redis.Float64(c.Do("ZSCORE", pfx+"unacked_index", "tag-1"))
			if err != nil {
				t.Fatal(err)
			}
			if score < before-0.001 || score > after+0.001 {
				t.Errorf("score %f not in [%f, %f]", score, before, after)
			}
			if score == math.Trunc(score) {
				t.Logf("note: score %f happens to be integral", score)
			}
			if n, _ := redis.Int(c.Do("LLEN", pfx+q)); n != 0 {
				t.Errorf("queue still has %d messages", n)
			}
			if n, err := b.UnackedCount(ctxT(t)); err != nil || n != 1 {
				t.Errorf("UnackedCount = %d, %v", n, err)
			}
		})
	}
}

func TestFetchMissingFields(t *testing.T) {
	for _, p := range fetchPaths {
		t.Run(p.name, func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			q := "q-" + uniq(t)
			raw := envelope(envOpts{noTag: true, noInfo: true})
			if err := b.Publish(ctxT(t), q, 0, raw); err != nil {
				t.Fatal(err)
			}
			d := p.fetch(b, t, []string{q})
			if d == nil || d.Tag == "" || len(d.Tag) != 36 {
				t.Fatalf("delivery %+v: want an invented uuid tag", d)
			}
			if !bytes.Equal(d.Raw, raw) {
				t.Error("Raw changed")
			}
			env, ex, rk, ok := unackedRecord(t, c, pfx, d.Tag)
			if !ok || !bytes.Equal(env, raw) || ex != "" || rk != q {
				t.Errorf("unacked = %v [%s, %q, %q]; want routing key = queue", ok, env, ex, rk)
			}
		})
	}
}

func TestFetchGarbage(t *testing.T) {
	for _, p := range fetchPaths {
		t.Run(p.name, func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			q := "q-" + uniq(t)
			if err := b.Publish(ctxT(t), q, 0, []byte("not json {")); err != nil {
				t.Fatal(err)
			}
			d := p.fetch(b, t, []string{q})
			if d == nil || d.Tag != "" || d.DecodeErr == nil || d.Envelope != nil || string(d.Raw) != "not json {" {
				t.Fatalf("delivery = %+v", d)
			}
			if n, _ := redis.Int(c.Do("HLEN", pfx+"unacked")); n != 0 {
				t.Errorf("garbage recorded: HLEN = %d", n)
			}
			if err := b.Ack(ctxT(t), d); err != nil {
				t.Errorf("Ack of unrecorded delivery: %v", err)
			}
		})
	}
}

func TestFetchTimeoutEmpty(t *testing.T) {
	b, _, _ := newTestBroker(t, brokerDB, Config{})
	q := "q-" + uniq(t)
	d, err := b.Fetch(ctxT(t), []string{q}, 50*time.Millisecond)
	if d != nil || err != nil {
		t.Fatalf("Fetch on empty queue = %v, %v", d, err)
	}
	d, err = b.Fetch(ctxT(t), []string{q}, -1)
	if d != nil || err != nil {
		t.Fatalf("non-blocking Fetch on empty queue = %v, %v", d, err)
	}
	if _, err := b.Fetch(ctxT(t), nil, -1); !errors.Is(err, ErrNoQueues) {
		t.Errorf("Fetch without queues: %v", err)
	}
}

// TestFetchOrder checks kombu's BRPOP order: priority step outer (0 first),
// queue inner, with the popped queue rotated to the end after each pop.
func TestFetchOrder(t *testing.T) {
	for _, p := range fetchPaths {
		t.Run(p.name, func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			u := uniq(t)
			qa, qb, qc := "a-"+u, "b-"+u, "c-"+u
			push := func(q string, prio int, tag string) {
				if err := b.Publish(ctxT(t), q, prio, envelope(envOpts{tag: tag, rk: q, priority: prio})); err != nil {
					t.Fatal(err)
				}
			}
			push(qa, 0, "a0-1")
			push(qa, 0, "a0-2")
			push(qa, 0, "a0-3")
			push(qb, 1, "b1-1") // step 0
			push(qc, 9, "c9-1")
			push(qb, 4, "b4-1") // step 3
			push(qa, 7, "a7-1") // step 6
			push(qc, 3, "c3-1")
			// Keys are what kombu uses.
			for _, k := range []string{qa, qb, qc + sep + "9", qb + sep + "3", qa + sep + "6", qc + sep + "3"} {
				if n, _ := redis.Int(c.Do("LLEN", pfx+k)); n == 0 {
					t.Fatalf("list %q is empty", k)
				}
			}
			queues := []string{qa, qb, qc}
			// cycle: [a b c] -a-> [b c a] -b-> [c a b] -a-> [c b a] -a-> [c b a],
			// then step 3 in order c, b.
			want := []string{"a0-1", "b1-1", "a0-2", "a0-3", "c3-1", "b4-1", "a7-1", "c9-1"}
			var got []string
			for range want {
				d := p.fetch(b, t, queues)
				if d == nil {
					t.Fatalf("ran dry after %v", got)
				}
				got = append(got, d.Tag)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("order\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestFetchManyRotation(t *testing.T) {
	b, _, _ := newTestBroker(t, brokerDB, Config{})
	u := uniq(t)
	qa, qb := "a-"+u, "b-"+u
	for i := range 3 {
		for _, q := range []string{qa, qb} {
			tag := fmt.Sprintf("%s-%d", q[:1], i)
			if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
				t.Fatal(err)
			}
		}
	}
	ds, err := b.FetchMany(ctxT(t), []string{qa, qb}, 4, -1)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Tag)
	}
	// Rotation continues across calls.
	ds, err = b.FetchMany(ctxT(t), []string{qa, qb}, 10, -1)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		got = append(got, d.Tag)
	}
	want := []string{"a-0", "b-0", "a-1", "b-1", "a-2", "b-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAck(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{})
	q := "q-" + uniq(t)
	for _, tag := range []string{"t1", "t2", "t3"} {
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.FetchMany(ctxT(t), []string{q}, 3, -1)
	if err != nil || len(ds) != 3 {
		t.Fatalf("FetchMany = %d, %v", len(ds), err)
	}
	if err := b.Ack(ctxT(t), ds[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := unackedRecord(t, c, pfx, "t1"); ok {
		t.Error("t1 still in unacked")
	}
	if _, err := c.Do("ZSCORE", pfx+"unacked_index", "t1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Do("ZSCORE", pfx+"unacked_index", "t1"); v != nil {
		t.Error("t1 still in unacked_index")
	}
	if err := b.AckTags(ctxT(t), "t2", "t3"); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(c.Do("HLEN", pfx+"unacked")); n != 0 {
		t.Errorf("HLEN unacked = %d", n)
	}
	if n, _ := redis.Int(c.Do("ZCARD", pfx+"unacked_index")); n != 0 {
		t.Errorf("ZCARD unacked_index = %d", n)
	}
}

func TestRequeueAndRestore(t *testing.T) {
	tests := []struct {
		name     string
		priority int
		list     string // sub-list suffix
		do       func(b *Broker, ctx context.Context, d *protocol.Delivery) error
		first    bool // restored message is consumed before the other one
	}{
		{"requeue-back", 0, "", (*Broker).Requeue, false},
		{"requeue-prio5", 5, sep + "3", (*Broker).Requeue, false},
		{"restore-front", 0, "", (*Broker).Restore, true},
		{"restore-prio9", 9, sep + "9", (*Broker).Restore, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			q := "q-" + uniq(t)
			m := envelope(envOpts{tag: "m", rk: q, priority: tt.priority})
			if err := b.Publish(ctxT(t), q, tt.priority, m); err != nil {
				t.Fatal(err)
			}
			d, err := b.Fetch(ctxT(t), []string{q}, -1)
			if err != nil || d == nil {
				t.Fatalf("Fetch = %v, %v", d, err)
			}
			other := envelope(envOpts{tag: "other", rk: q, priority: tt.priority})
			if err := b.Publish(ctxT(t), q, tt.priority, other); err != nil {
				t.Fatal(err)
			}
			if err := tt.do(b, ctxT(t), d); err != nil {
				t.Fatal(err)
			}
			if _, _, _, ok := unackedRecord(t, c, pfx, "m"); ok {
				t.Error("record not removed")
			}
			if v, _ := c.Do("ZSCORE", pfx+"unacked_index", "m"); v != nil {
				t.Error("index not removed")
			}
			key := pfx + q + tt.list
			first, err := redis.Bytes(c.Do("RPOP", key))
			if err != nil {
				t.Fatalf("RPOP %q: %v", key, err)
			}
			second, _ := redis.Bytes(c.Do("RPOP", key))
			restored := second
			if tt.first {
				restored = first
			}
			if tagOf(t, restored) != "m" {
				t.Fatalf("restored message not at the expected end: first=%s", first)
			}
			if h, di := redelivered(t, restored); !h || !di {
				t.Errorf("redelivered flags headers=%v delivery_info=%v", h, di)
			}
			if !sameExceptRedelivered(t, restored, m) {
				t.Errorf("restored message differs beyond the redelivered flags:\n%s\n%s", restored, m)
			}
		})
	}
}

func TestRestoreRoutesThroughBinding(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{})
	u := uniq(t)
	q, target, ex := "q-"+u, "target-"+u, "ex-"+u
	if err := b.AddBinding(ctxT(t), ex, b.Names().BindingMember("rk1", "", target)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddBinding(ctxT(t), ex, b.Names().BindingMember("other", "", "nobody-"+u)); err != nil {
		t.Fatal(err)
	}
	if m, _ := redis.Strings(c.Do("SMEMBERS", pfx+"_kombu.binding."+ex)); len(m) != 2 {
		t.Fatalf("binding set = %q", m)
	}
	for _, tag := range []string{"bound", "unbound"} {
		rk := "rk1"
		if tag == "unbound" {
			rk = "no-binding"
		}
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, exchange: ex, rk: rk})); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.FetchMany(ctxT(t), []string{q}, 2, -1)
	if err != nil || len(ds) != 2 {
		t.Fatalf("FetchMany: %d %v", len(ds), err)
	}
	if _, gotEx, gotRK, _ := unackedRecord(t, c, pfx, "bound"); gotEx != ex || gotRK != "rk1" {
		t.Errorf("record exchange/rk = %q %q", gotEx, gotRK)
	}
	for _, d := range ds {
		if err := b.Restore(ctxT(t), d); err != nil {
			t.Fatal(err)
		}
	}
	if v, _ := redis.Bytes(c.Do("RPOP", pfx+target)); tagOf(t, v) != "bound" {
		t.Errorf("bound message not routed to %s", target)
	}
	// No matching binding: kombu drops it; we push to the delivery's queue.
	if v, _ := redis.Bytes(c.Do("RPOP", pfx+q)); v == nil || tagOf(t, v) != "unbound" {
		t.Errorf("unbound message not pushed to its own queue: %s", v)
	}
	if n, _ := redis.Int(c.Do("EXISTS", pfx+"nobody-"+u)); n != 0 {
		t.Error("message routed to a queue with another routing key")
	}
}

func TestRestoreVisible(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{})
	q := "q-" + uniq(t)
	for _, tag := range []string{"old", "fresh", "touched"} {
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := b.FetchMany(ctxT(t), []string{q}, 3, -1)
	if err != nil || len(ds) != 3 {
		t.Fatalf("FetchMany: %d %v", len(ds), err)
	}
	old := strconv.FormatFloat(float64(time.Now().Add(-2*time.Hour).Unix()), 'f', 6, 64)
	for _, tag := range []string{"old", "touched"} {
		if _, err := c.Do("ZADD", pfx+"unacked_index", old, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Touch(ctxT(t), []string{"touched", "not-recorded"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Do("ZSCORE", pfx+"unacked_index", "not-recorded"); v != nil {
		t.Error("Touch added an unknown tag")
	}

	// Mutex held by someone else: nothing happens.
	if _, err := c.Do("SET", pfx+"unacked_mutex", "someone", "PX", 60000); err != nil {
		t.Fatal(err)
	}
	if n, err := b.RestoreVisible(ctxT(t), 0); n != 0 || err != nil {
		t.Fatalf("RestoreVisible with held mutex = %d, %v", n, err)
	}
	if v, _ := redis.String(c.Do("GET", pfx+"unacked_mutex")); v != "someone" {
		t.Errorf("foreign mutex released: %q", v)
	}
	c.Do("DEL", pfx+"unacked_mutex")

	n, err := b.RestoreVisible(ctxT(t), 0) // default 1 h
	if err != nil || n != 1 {
		t.Fatalf("RestoreVisible = %d, %v; want 1", n, err)
	}
	if v, _ := c.Do("GET", pfx+"unacked_mutex"); v != nil {
		t.Error("mutex not released")
	}
	for tag, want := range map[string]bool{"old": false, "fresh": true, "touched": true} {
		if _, _, _, ok := unackedRecord(t, c, pfx, tag); ok != want {
			t.Errorf("record %s present = %v, want %v", tag, ok, want)
		}
	}
	v, err := redis.Bytes(c.Do("RPOP", pfx+q))
	if err != nil || tagOf(t, v) != "old" {
		t.Fatalf("restored message: %s %v", v, err)
	}
	if h, di := redelivered(t, v); !h || !di {
		t.Error("redelivered flags missing")
	}
	// A short timeout restores the rest.
	if n, err := b.RestoreVisible(ctxT(t), time.Nanosecond); err != nil || n != 2 {
		t.Errorf("RestoreVisible(1ns) = %d, %v", n, err)
	}
}

func TestRestoreVisibleLimit(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{RestoreLimit: 2})
	q := "q-" + uniq(t)
	for i := range 5 {
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: fmt.Sprint(i), rk: q})); err != nil {
			t.Fatal(err)
		}
	}
	if ds, err := b.FetchMany(ctxT(t), []string{q}, 5, -1); err != nil || len(ds) != 5 {
		t.Fatal(len(ds), err)
	}
	if n, err := b.RestoreVisible(ctxT(t), time.Nanosecond); n != 2 || err != nil {
		t.Errorf("RestoreVisible = %d, %v; want 2", n, err)
	}
	if n, _ := redis.Int(c.Do("HLEN", pfx+"unacked")); n != 3 {
		t.Errorf("HLEN = %d", n)
	}
}

func TestPublishBindPurgeLength(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{})
	q := "q-" + uniq(t)
	if err := b.Bind(ctxT(t), q); err != nil {
		t.Fatal(err)
	}
	if ok, _ := redis.Bool(c.Do("SISMEMBER", pfx+"_kombu.binding."+q, q+sep+sep+q)); !ok {
		t.Error("binding member missing")
	}
	for i, prio := range []int{0, 2, 3, 6, 9, 9, 12, -1} {
		if err := b.Publish(ctxT(t), q, prio, envelope(envOpts{tag: fmt.Sprint(i), rk: q})); err != nil {
			t.Fatal(err)
		}
	}
	for k, want := range map[string]int{q: 3, q + sep + "3": 1, q + sep + "6": 1, q + sep + "9": 3} {
		if n, _ := redis.Int(c.Do("LLEN", pfx+k)); n != want {
			t.Errorf("LLEN %q = %d, want %d", k, n, want)
		}
	}
	if n, err := b.QueueLength(ctxT(t), q); n != 8 || err != nil {
		t.Errorf("QueueLength = %d, %v", n, err)
	}
	if n, err := b.Purge(ctxT(t), q); n != 8 || err != nil {
		t.Errorf("Purge = %d, %v", n, err)
	}
	if n, _ := b.QueueLength(ctxT(t), q); n != 0 {
		t.Errorf("after purge: %d", n)
	}
	if err := b.RemoveBinding(ctxT(t), q, q+sep+sep+q); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(c.Do("SCARD", pfx+"_kombu.binding."+q)); n != 0 {
		t.Error("binding not removed")
	}
}

// TestGlobalKeyPrefix checks that every broker key carries the prefix and
// nothing is written unprefixed (spec §2.9).
func TestGlobalKeyPrefix(t *testing.T) {
	testenv.NeedRedis(t, brokerDB)
	u := uniq(t)
	pfx := "gkp-" + u + ":"
	b, c, _ := newTestBroker(t, resultsDB, Config{GlobalKeyPrefix: pfx})
	q := "q-" + u
	ctx := ctxT(t)
	if err := b.Bind(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, q, 0, envelope(envOpts{tag: "x", rk: q})); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, q, 6, envelope(envOpts{tag: "y", rk: q, priority: 6})); err != nil {
		t.Fatal(err)
	}
	want := []string{pfx + q + sep + "6", pfx + q, pfx + "_kombu.binding." + q}
	for _, k := range want {
		if n, _ := redis.Int(c.Do("EXISTS", k)); n != 1 {
			t.Errorf("key %q missing", k)
		}
	}
	d, err := b.Fetch(ctx, []string{q}, 100*time.Millisecond)
	if err != nil || d == nil || d.Queue != q {
		t.Fatalf("Fetch = %+v, %v", d, err)
	}
	for _, k := range []string{pfx + "unacked", pfx + "unacked_index"} {
		if n, _ := redis.Int(c.Do("EXISTS", k)); n != 1 {
			t.Errorf("key %q missing", k)
		}
	}
	// BRPOP path strips the prefix from the returned key.
	b.fetchMu.Lock()
	d2, err := b.popBlocking(ctx, []string{q}, 100*time.Millisecond)
	b.fetchMu.Unlock()
	if err != nil || d2 == nil || d2.Queue != q {
		t.Fatalf("popBlocking = %+v, %v", d2, err)
	}
	if _, err := c.Do("SET", pfx+"unacked_mutex", "other", "PX", 60000); err != nil {
		t.Fatal(err)
	}
	if n, _ := b.RestoreVisible(ctx, time.Nanosecond); n != 0 {
		t.Error("RestoreVisible ignored the prefixed mutex")
	}
	for _, k := range []string{q, "unacked", "unacked_index", "_kombu.binding." + q} {
		if n, _ := redis.Int(c.Do("EXISTS", k)); n != 0 {
			t.Errorf("unprefixed key %q written", k)
		}
	}
}

func TestClosed(t *testing.T) {
	testenv.NeedRedis(t, brokerDB)
	b, err := NewBroker(testURL(brokerDB), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := b.Fetch(ctxT(t), []string{"x"}, -1); !errors.Is(err, ErrClosed) {
		t.Errorf("Fetch after Close: %v", err)
	}
	if err := b.Publish(ctxT(t), "x", 0, []byte("{}")); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	b, err := NewBroker("redis://127.0.0.1:1/1", Config{DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Ping(ctxT(t)); !errors.Is(err, ErrConn) {
		t.Errorf("Ping unreachable: %v, want ErrConn", err)
	}
	if _, err := b.Fetch(ctxT(t), []string{"x"}, time.Millisecond); !errors.Is(err, ErrConn) {
		t.Errorf("Fetch unreachable: %v, want ErrConn", err)
	}
}

// TestRestoreVisibleMutexLease: this process holds the unacked_mutex for at
// most maxMutexLease (a SIGKILLed worker blocks restores for seconds, not
// kombu's 5 minutes), refreshes it while a scan runs, and stops the scan
// when the lock is no longer its own.
func TestRestoreVisibleMutexLease(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{}, maxMutexLease},
		{Config{UnackedMutexExpire: 5 * time.Second}, 5 * time.Second},
		{Config{UnackedMutexExpire: time.Hour}, maxMutexLease},
	} {
		if got := tc.cfg.mutexLease(); got != tc.want {
			t.Errorf("mutexLease(%v) = %v, want %v", tc.cfg.UnackedMutexExpire, got, tc.want)
		}
	}

	for _, steal := range []bool{false, true} {
		t.Run(fmt.Sprintf("stolen=%v", steal), func(t *testing.T) {
			b, c, pfx := newTestBroker(t, brokerDB, Config{})
			q := "q-" + uniq(t)
			tags := []string{"a", "b", "c", "d"}
			for _, tag := range tags {
				if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
					t.Fatal(err)
				}
			}
			if ds, err := b.FetchMany(ctxT(t), []string{q}, len(tags), -1); err != nil || len(ds) != len(tags) {
				t.Fatalf("FetchMany: %d %v", len(ds), err)
			}
			old := strconv.FormatFloat(float64(time.Now().Add(-2*time.Hour).Unix()), 'f', 6, 64)
			for _, tag := range tags {
				if _, err := c.Do("ZADD", pfx+"unacked_index", old, tag); err != nil {
					t.Fatal(err)
				}
			}
			// Each reading of the clock is a lease later: every record
			// of the scan needs a refresh first.
			var mu sync.Mutex
			clock := time.Now()
			calls := 0
			b.now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				calls++
				if calls == 3 {
					if ttl, _ := redis.Int(c.Do("PTTL", pfx+"unacked_mutex")); ttl <= 0 || ttl > int(maxMutexLease.Milliseconds()) {
						t.Errorf("unacked_mutex PTTL = %d ms, want (0, %d]", ttl, maxMutexLease.Milliseconds())
					}
					if steal { // the lease ran out and a kombu peer took the lock
						c.Do("SET", pfx+"unacked_mutex", "python-peer", "PX", 60000)
					}
				}
				clock = clock.Add(maxMutexLease)
				return clock
			}
			n, err := b.RestoreVisible(ctxT(t), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if steal {
				if n >= len(tags) {
					t.Errorf("restored %d of %d after losing the mutex", n, len(tags))
				}
				if v, _ := redis.String(c.Do("GET", pfx+"unacked_mutex")); v != "python-peer" {
					t.Errorf("the peer's mutex was released: %q", v)
				}
				return
			}
			if n != len(tags) {
				t.Errorf("restored %d, want %d", n, len(tags))
			}
		})
	}
}
