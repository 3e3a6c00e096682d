package redistransport

import (
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// opsString renders script calls as "key:meta[pre...]" for the tests.
func opsString(units []*writeOp) string {
	var b strings.Builder
	for i, u := range units {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(u.key + ":" + string(u.meta))
		if len(u.pre) > 0 {
			b.WriteByte('[')
			for k, p := range u.pre {
				if k > 0 {
					b.WriteByte(',')
				}
				b.WriteString(string(p.meta))
			}
			b.WriteByte(']')
		}
	}
	return b.String()
}

// TestFold: foldable (no-wait, non-SUCCESS) writes merge into the next
// write of the same key, in order; other writes and writes without a
// successor in the batch stay script calls of their own, in batch order.
func TestFold(t *testing.T) {
	nw := func(key, meta string) *writeOp { return &writeOp{key: key, meta: []byte(meta), foldable: true} }
	wt := func(key, meta string) *writeOp {
		return &writeOp{key: key, meta: []byte(meta), done: make(chan error, 1)}
	}
	plain := func(key, meta string) *writeOp { return &writeOp{key: key, meta: []byte(meta)} } // no-wait SUCCESS
	many := func() []*writeOp {                                                                // > 16 writes: the map path
		var ops []*writeOp
		for i := range 10 {
			ops = append(ops, nw(string(rune('a'+i)), "S"))
		}
		for i := range 10 {
			ops = append(ops, wt(string(rune('a'+i)), "F"))
		}
		return ops
	}
	for _, tt := range []struct {
		name  string
		batch []*writeOp
		want  string
	}{
		{"started+final", []*writeOp{nw("a", "S"), wt("a", "F")}, "a:F[S]"},
		{"interleaved", []*writeOp{nw("a", "S"), nw("b", "S"), nw("a", "P1"), wt("a", "F"), nw("b", "P")},
			"a:F[S,P1] b:P[S]"},
		{"no successor", []*writeOp{nw("a", "S"), wt("b", "F")}, "a:S b:F"},
		{"waited write is not folded", []*writeOp{wt("a", "P"), wt("a", "F")}, "a:P a:F"},
		{"no-wait SUCCESS is not folded", []*writeOp{plain("a", "X"), wt("a", "F")}, "a:X a:F"},
		{"chain through a waited write", []*writeOp{nw("a", "S"), wt("a", "P"), nw("a", "Q"), wt("a", "F")},
			"a:P[S] a:F[Q]"},
		{"many", many(), "a:F[S] b:F[S] c:F[S] d:F[S] e:F[S] f:F[S] g:F[S] h:F[S] i:F[S] j:F[S]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := opsString(fold(nil, tt.batch)); got != tt.want {
				t.Errorf("fold = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestTake: a sender's batch carries the keys with a waited or previously
// skipped write and leaves other no-wait writes queued (marked skipped, so
// the next batch carries them); the timer's batch carries everything.
func TestTake(t *testing.T) {
	w := &writer{}
	nw := func(key string) *writeOp { return &writeOp{key: key, meta: []byte(key), foldable: true} }
	wt := func(key string) *writeOp {
		return &writeOp{key: key, meta: []byte(key + "!"), done: make(chan error, 1)}
	}
	w.queue = []*writeOp{nw("a"), nw("b"), wt("a"), nw("c"), nw("a")}
	if got := opsString(w.take(nil, false)); got != "a:a a:a! a:a" {
		t.Fatalf("first batch %s", got)
	}
	if got := opsString(w.queue); got != "b:b c:c" || !w.queue[0].skipped || !w.queue[1].skipped {
		t.Fatalf("left %s", got)
	}
	w.queue = append(w.queue, nw("d"), wt("e"))
	if got := opsString(w.take(nil, false)); got != "b:b c:c e:e!" {
		t.Fatalf("second batch %s", got)
	}
	if got := opsString(w.queue); got != "d:d" {
		t.Fatalf("left %s", got)
	}
	if got := opsString(w.take(nil, true)); got != "d:d" || w.queue != nil {
		t.Fatalf("timer batch %s, left %d", got, len(w.queue))
	}
	// Only no-wait writes, none skipped yet, and a sender: all go.
	w.queue = []*writeOp{nw("x"), nw("y")}
	if got := opsString(w.take(nil, false)); got != "x:x y:y" {
		t.Fatalf("no-wait only %s", got)
	}
}

// TestWriterFoldedStates: STARTED and PROGRESS queued without waiting and
// the final state of the same task sent in one script call still publish
// every state in order and store the final one; over a stored SUCCESS the
// folded call publishes and stores nothing (the guard), but still acks.
func TestWriterFoldedStates(t *testing.T) {
	b, bc, pfx := newTestBroker(t, 1, Config{})
	r, rc, _ := newTestBackend(t, 1, Config{})
	r.UseBroker(b)
	q := "q-" + uniq(t)
	fetch := func(tag string) *protocol.Delivery {
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
			t.Fatal(err)
		}
		d, err := b.Fetch(ctxT(t), []string{q}, -1)
		if err != nil || d == nil {
			t.Fatal(d, err)
		}
		return d
	}
	run := func(id string, d *protocol.Delivery) {
		// Hold the sending so that all three writes are queued before
		// a batch is taken, as when another batch is being sent.
		r.w.mu.Lock()
		r.w.sending = true
		r.w.mu.Unlock()
		for _, st := range []string{protocol.StateStarted, "PROGRESS"} {
			if err := r.StoreNoWait(ctxT(t), &protocol.ResultMeta{Status: st, TaskID: id}); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() {
			done <- r.StoreAndAck(ctxT(t), &protocol.ResultMeta{Status: protocol.StateFailure, Result: "x", TaskID: id}, d)
		}()
		for {
			r.w.mu.Lock()
			n := len(r.w.queue)
			r.w.mu.Unlock()
			if n == 3 {
				break
			}
		}
		r.w.sendLoop(true) // one batch: the three writes as one script call
		r.w.tryRead(nil)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := unackedRecord(t, bc, pfx, d.Tag); ok {
			t.Errorf("%s not acked", d.Tag)
		}
	}

	id := pyfmt.NewUUID4().String()
	next := subscribe(t, 1, r.Key(id))
	run(id, fetch("fold1"))
	for _, want := range []string{`"STARTED"`, `"PROGRESS"`, `"FAILURE"`} {
		if got := next(); !strings.Contains(got, want) {
			t.Fatalf("published %s, want %s", got, want)
		}
	}
	if v, _ := redis.String(rc.Do("GET", r.Key(id))); !strings.Contains(v, `"FAILURE"`) {
		t.Fatalf("stored %s", v)
	}

	id = pyfmt.NewUUID4().String()
	next = subscribe(t, 1, r.Key(id))
	success := `{"status": "SUCCESS", "result": 1, "task_id": "` + id + `"}`
	if _, err := rc.Do("SET", r.Key(id), success); err != nil {
		t.Fatal(err)
	}
	run(id, fetch("fold2"))
	if _, err := rc.Do("PUBLISH", r.Key(id), "marker"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "marker" {
		t.Fatalf("published %s over SUCCESS", got)
	}
	if v, _ := redis.String(rc.Do("GET", r.Key(id))); v != success {
		t.Fatalf("stored %s", v)
	}
}
