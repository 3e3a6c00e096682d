package redistransport

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// TestWriterOrder: with a same-server broker attached, states queued with
// StoreNoWait from several goroutines and the final StoreAndAck of each
// task reach Redis in call order per task (PUBLISH order = call order), the
// final state is the stored one, the deliveries are acked, and Close
// flushes writes still queued.
func TestWriterOrder(t *testing.T) {
	for _, tt := range []struct {
		name     string
		resultDB int
	}{{"same-db", 1}, {"other-db", 3}} {
		t.Run(tt.name, func(t *testing.T) {
			b, bc, pfx := newTestBroker(t, brokerDB, Config{})
			r, rc, _ := newTestBackend(t, tt.resultDB, Config{})
			r.UseBroker(b)
			if r.w == nil {
				t.Fatal("no group-commit writer for a same-server broker")
			}
			q := "q-" + uniq(t)
			const tasks, steps = 8, 20
			ids := make([]string, tasks)
			nexts := make([]func() string, tasks)
			var ds []*protocol.Delivery
			for i := range tasks {
				ids[i] = pyfmt.NewUUID4().String()
				nexts[i] = subscribe(t, tt.resultDB, r.Key(ids[i]))
				if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: fmt.Sprintf("w%d", i), rk: q})); err != nil {
					t.Fatal(err)
				}
				d, err := b.Fetch(ctxT(t), []string{q}, -1)
				if err != nil || d == nil {
					t.Fatal(d, err)
				}
				ds = append(ds, d)
			}
			var wg sync.WaitGroup
			for i := range tasks {
				wg.Go(func() {
					for s := range steps {
						m := &protocol.ResultMeta{Status: "PROGRESS", Result: map[string]any{"step": s}, TaskID: ids[i]}
						if err := r.StoreNoWait(ctxT(t), m); err != nil {
							t.Error(err)
						}
					}
					m := &protocol.ResultMeta{Status: protocol.StateSuccess, Result: "done", TaskID: ids[i]}
					if err := r.StoreAndAck(ctxT(t), m, ds[i]); err != nil {
						t.Error(err)
					}
					// Queued after the final state: the SUCCESS guard
					// keeps SUCCESS, and Close must flush it first.
					_ = r.StoreNoWait(ctxT(t), &protocol.ResultMeta{Status: "PROGRESS", TaskID: ids[i]})
				})
			}
			wg.Wait()
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			for i := range tasks {
				for s := range steps {
					var m map[string]any
					if err := json.Unmarshal([]byte(nexts[i]()), &m); err != nil {
						t.Fatal(err)
					}
					if m["status"] != "PROGRESS" || fmt.Sprint(m["result"].(map[string]any)["step"]) != fmt.Sprint(s) {
						t.Fatalf("task %d message %d: %v", i, s, m)
					}
				}
				if got := nexts[i](); !json.Valid([]byte(got)) || !strings.Contains(got, `"SUCCESS"`) {
					t.Fatalf("task %d: final message %s", i, got)
				}
				v, err := redis.Bytes(rc.Do("GET", r.Key(ids[i])))
				if err != nil || !strings.Contains(string(v), `"SUCCESS"`) {
					t.Errorf("task %d: stored %s (%v)", i, v, err)
				}
				if _, _, _, ok := unackedRecord(t, bc, pfx, fmt.Sprintf("w%d", i)); ok {
					t.Errorf("task %d not acked", i)
				}
			}
			if err := r.StoreNoWait(ctxT(t), &protocol.ResultMeta{Status: "PROGRESS", TaskID: ids[0]}); err == nil {
				t.Error("StoreNoWait after Close succeeded")
			}
		})
	}
}

// TestStoreAckFetch: the final write of one delivery also pops and records
// the next message in the same round trip; with an empty queue it returns
// nothing; the popped message is held (unacked) exactly as a Fetch result.
func TestStoreAckFetch(t *testing.T) {
	b, bc, pfx := newTestBroker(t, brokerDB, Config{})
	r, rc, _ := newTestBackend(t, brokerDB, Config{})
	r.UseBroker(b)
	q := "q-" + uniq(t)
	for _, tag := range []string{"f1", "f2"} {
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
			t.Fatal(err)
		}
	}
	d, err := b.Fetch(ctxT(t), []string{q}, -1)
	if err != nil || d == nil || d.Tag != "f1" {
		t.Fatal(d, err)
	}
	for i, want := range []string{"f2", ""} {
		id := pyfmt.NewUUID4().String()
		ds, err := r.StoreAckFetch(ctxT(t), &protocol.ResultMeta{Status: protocol.StateSuccess, Result: i, TaskID: id}, d, []string{q})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok := unackedRecord(t, bc, pfx, d.Tag); ok {
			t.Errorf("%s not acked", d.Tag)
		}
		if v, _ := redis.Bytes(rc.Do("GET", r.Key(id))); !strings.Contains(string(v), "SUCCESS") {
			t.Errorf("result %d not stored: %s", i, v)
		}
		if want == "" {
			if len(ds) != 0 {
				t.Fatalf("fetched %v from an empty queue", ds)
			}
			break
		}
		if len(ds) != 1 || ds[0].Tag != want || ds[0].Queue != q || ds[0].Envelope == nil {
			t.Fatalf("fetched %+v, want %s", ds, want)
		}
		if _, _, _, ok := unackedRecord(t, bc, pfx, want); !ok {
			t.Errorf("%s not recorded as unacked", want)
		}
		d = ds[0]
	}
}

// TestWriterReconnects: when the writer's connection is killed between
// batches, the next write is sent again on a new connection and succeeds.
func TestWriterReconnects(t *testing.T) {
	name := "omt-writer-" + pyfmt.NewUUID4().String()[:8]
	b, _, _ := newTestBroker(t, brokerDB, Config{ClientName: name})
	r, rc, _ := newTestBackend(t, brokerDB, Config{})
	r.UseBroker(b)
	store := func(state string) string {
		id := pyfmt.NewUUID4().String()
		if err := r.Store(ctxT(t), &protocol.ResultMeta{Status: state, TaskID: id}); err != nil {
			t.Fatalf("store %s: %v", state, err)
		}
		return id
	}
	store("PROGRESS")
	if killClients(t, rc, name) == 0 {
		t.Fatalf("no connection named %s found", name)
	}
	id := store(protocol.StateSuccess)
	if v, _ := redis.Bytes(rc.Do("GET", r.Key(id))); !strings.Contains(string(v), "SUCCESS") {
		t.Fatalf("not stored after reconnect: %s", v)
	}
}

// TestWriterPipelinedReconnects: several goroutines write STARTED (no
// wait) and then a final state (StoreAndAck) per task, so that batches are
// pipelined (sent before the replies of earlier ones), while the writer's
// connection is killed again and again. Every final write succeeds, every
// task's stored value is its final state (a resent STARTED never follows
// its FAILURE), and every delivery is acked.
func TestWriterPipelinedReconnects(t *testing.T) {
	name := "omt-pipe-" + pyfmt.NewUUID4().String()[:8]
	b, bc, pfx := newTestBroker(t, brokerDB, Config{ClientName: name})
	r, rc, _ := newTestBackend(t, brokerDB, Config{})
	r.UseBroker(b)
	q := "q-" + uniq(t)
	const workers, tasks = 6, 100
	ids := make([][]string, workers)
	ds := make([][]*protocol.Delivery, workers)
	for g := range workers {
		for i := range tasks {
			tag := fmt.Sprintf("p%d-%d", g, i)
			if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
				t.Fatal(err)
			}
			d, err := b.Fetch(ctxT(t), []string{q}, -1)
			if err != nil || d == nil {
				t.Fatal(d, err)
			}
			ids[g] = append(ids[g], pyfmt.NewUUID4().String())
			ds[g] = append(ds[g], d)
		}
	}
	kill := func() int { return killClients(t, rc, name) }
	// Kill the connections whenever 40 more tasks finished since the
	// last kill (so each kill hits a working writer), 5 times.
	stop := make(chan struct{})
	var finished atomic.Int64
	var kills int
	var killed sync.WaitGroup
	killed.Go(func() {
		last := int64(0)
		for kills < 5 {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n := finished.Load(); n >= last+40 {
				if kill() > 0 {
					kills++
				}
				last = n
			}
		}
	})
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i, id := range ids[g] {
				if err := r.StoreNoWait(ctxT(t), &protocol.ResultMeta{Status: protocol.StateStarted, TaskID: id}); err != nil {
					t.Error(err)
				}
				final := protocol.StateSuccess
				if i%2 == 1 {
					final = protocol.StateFailure
				}
				if err := r.StoreAndAck(ctxT(t), &protocol.ResultMeta{Status: final, Result: "x", TaskID: id}, ds[g][i]); err != nil {
					t.Errorf("task %d/%d: %v", g, i, err)
				}
				finished.Add(1)
				time.Sleep(time.Millisecond) // a run long enough for the kills
			}
		})
	}
	wg.Wait()
	close(stop)
	killed.Wait()
	if kills < 3 {
		t.Errorf("only %d kills while writing", kills)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for g := range workers {
		for i, id := range ids[g] {
			want := `"SUCCESS"`
			if i%2 == 1 {
				want = `"FAILURE"`
			}
			v, err := redis.String(rc.Do("GET", r.Key(id)))
			if err != nil || !strings.Contains(v, want) {
				t.Errorf("task %d/%d: stored %s (%v), want %s", g, i, v, err, want)
			}
			if _, _, _, ok := unackedRecord(t, bc, pfx, ds[g][i].Tag); ok {
				t.Errorf("task %d/%d not acked", g, i)
			}
		}
	}
}

// killClients kills every connection of the server named name (CLIENT
// SETNAME) and returns how many it killed.
func killClients(t *testing.T, rc redis.Conn, name string) int {
	t.Helper()
	list, err := redis.String(rc.Do("CLIENT", "LIST"))
	if err != nil {
		t.Error(err)
		return 0
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line, " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if _, err := rc.Do("CLIENT", "KILL", "ID", id); err == nil {
					n++
				}
			}
		}
	}
	return n
}

// TestWriterSendsWithoutWaitingForReplies: while nobody reads replies, a
// second final write is still sent (two batches in flight on the one
// connection); once reading resumes both callers get their outcomes, in
// order, and both states are stored and acked.
func TestWriterSendsWithoutWaitingForReplies(t *testing.T) {
	b, bc, pfx := newTestBroker(t, brokerDB, Config{})
	r, rc, _ := newTestBackend(t, brokerDB, Config{})
	r.UseBroker(b)
	q := "q-" + uniq(t)
	inflight := func() int {
		r.w.mu.Lock()
		defer r.w.mu.Unlock()
		return len(r.w.inflight)
	}
	waitInflight := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for inflight() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d batches in flight, want %d", inflight(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	r.w.mu.Lock()
	r.w.reading = true // hold the reading: no reply is read
	r.w.mu.Unlock()
	ids := []string{pyfmt.NewUUID4().String(), pyfmt.NewUUID4().String()}
	var ds []*protocol.Delivery
	errs := make([]chan error, len(ids))
	for i, id := range ids {
		tag := fmt.Sprintf("nw%d", i)
		if err := b.Publish(ctxT(t), q, 0, envelope(envOpts{tag: tag, rk: q})); err != nil {
			t.Fatal(err)
		}
		d, err := b.Fetch(ctxT(t), []string{q}, -1)
		if err != nil || d == nil {
			t.Fatal(d, err)
		}
		ds = append(ds, d)
		errs[i] = make(chan error, 1)
		go func() {
			errs[i] <- r.StoreAndAck(ctxT(t), &protocol.ResultMeta{Status: protocol.StateSuccess, Result: i, TaskID: id}, d)
		}()
		waitInflight(i + 1)
	}
	r.w.mu.Lock()
	r.w.reading = false
	r.w.mu.Unlock()
	r.w.tryRead(nil)
	for i, id := range ids {
		select {
		case err := <-errs[i]:
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("write %d: no outcome", i)
		}
		if v, _ := redis.String(rc.Do("GET", r.Key(id))); !strings.Contains(v, "SUCCESS") {
			t.Errorf("write %d stored %q", i, v)
		}
		if _, _, _, ok := unackedRecord(t, bc, pfx, ds[i].Tag); ok {
			t.Errorf("write %d not acked", i)
		}
	}
}
