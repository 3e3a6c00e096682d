package redistransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
)

// writer is the group-commit path of a ResultBackend attached to a broker
// on the same server: every result write (and the ack of StoreAndAck) of
// the process goes, in the order the writes were queued, through one
// dedicated connection, as pipelines of EVALSHA storeAckScript calls (one
// write + one read syscall and one Redis read event for a whole batch).
//
// There is no writer goroutine (each hand-off to one costs a thread
// wake-up): a caller that waits for its write (Store, StoreAndAck) and
// finds nobody flushing becomes the leader and sends everything queued so
// far, its own write included, on its own goroutine; callers arriving
// meanwhile queue and wait, and when the leader's batch is done it passes
// the leadership to the first of them. Writes that are not waited for
// (StoreNoWait: STARTED, PROGRESS) are only queued: they go with the next
// batch — usually the final state of the same task — or at the latest
// after flushDelay, when a timer flushes them.
//
// One connection and one FIFO queue give the ordering guarantee the worker
// relies on: a STARTED or PROGRESS write queued without waiting always
// reaches Redis before the final state of the same task queued after it,
// so a final state is never followed by an earlier one. A final
// StoreAndAck waits for its reply: the ack is atomic with the stored
// result (same script), so acks-late still acks only a durably stored
// final state.
//
// On a connection error the unanswered part of the batch is sent again, in
// order, on a new connection (up to writerAttempts times); the store
// script's SUCCESS guard makes a repeated write harmless (a repeated
// STARTED cannot overwrite SUCCESS, and the final state is repeated after
// it).
type writer struct {
	rb  *ResultBackend
	b   *Broker
	log *slog.Logger

	mu     sync.Mutex
	queue  []*writeOp
	closed bool
	leader bool // a goroutine is sending; only it touches rc
	armed  bool // timer set for queued no-wait writes
	timer  *time.Timer

	rc    redis.Conn // owned by the leader
	units []*writeOp // send's script calls, owned by the leader
}

// writeOp is one queued write.
type writeOp struct {
	key, tag string
	meta     []byte
	// done (buffered) receives the outcome, or errPromoted when the
	// waiter becomes the leader; nil for StoreNoWait (errors are logged).
	// stored is set before: false when an existing SUCCESS prevented the
	// write.
	done   chan error
	stored bool
	sent   bool  // its batch was sent (outcome delivered)
	err    error // outcome, kept until the batch is finished
	// fetch, when set on a waited write, asks for one more message to be
	// popped (fetchScript) in the same pipeline, right after the writes.
	fetch *fetchReq
	// foldable marks a no-wait write of a non-SUCCESS state: when a later
	// write of the same key is in the same batch, it is folded into that
	// write's script call (published only, see storeFn and fold).
	foldable bool
	// skipped is set when a batch left this no-wait write queued (take);
	// the next batch always carries it.
	skipped bool
	// pre are the earlier writes folded into this one for one send.
	pre []*writeOp
}

// fetchReq is the fetch folded into a write's round trip.
type fetchReq struct {
	queues []string
	ds     []*protocol.Delivery
	err    error
}

// writerAttempts bounds how often one write is sent before it fails.
const writerAttempts = 3

// maxBatch bounds how many writes one pipeline carries.
const maxBatch = 256

// flushDelay bounds how long a write queued without waiting (STARTED,
// PROGRESS) may stay queued when no other write comes to carry it.
const flushDelay = 2 * time.Millisecond

// errPromoted tells a waiting caller that it is now the leader.
var errPromoted = errors.New("redis: writer leadership passed")

func newWriter(rb *ResultBackend, b *Broker, log *slog.Logger) *writer {
	w := &writer{rb: rb, b: b, log: log}
	w.timer = time.AfterFunc(time.Hour, w.timerFlush)
	w.timer.Stop()
	return w
}

// enqueue queues op and, for a waited op, waits for its outcome (leading
// the flush when nobody does); false once the writer is closed.
func (w *writer) enqueue(op *writeOp) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, op)
	if op.done == nil {
		if !w.leader && !w.armed {
			w.armed = true
			w.timer.Reset(flushDelay)
		}
		w.mu.Unlock()
		return true
	}
	lead := !w.leader
	w.leader = true
	w.mu.Unlock()
	if lead {
		w.lead(op)
	}
	return true
}

// wait returns the outcome of a waited op, leading when promoted.
func (w *writer) wait(op *writeOp) error {
	for {
		err := <-op.done
		if !errors.Is(err, errPromoted) {
			return err
		}
		w.lead(op)
	}
}

// lead sends batches until own (nil: one batch) was sent, then passes the
// leadership on: to the first waiting caller still queued, else to nobody
// (arming the timer for queued no-wait writes). Caller set w.leader.
func (w *writer) lead(own *writeOp) {
	var batch []*writeOp
	for {
		w.mu.Lock()
		batch = w.take(batch[:0], own == nil)
		if w.armed {
			w.armed = false
			w.timer.Stop()
		}
		w.mu.Unlock()
		if len(batch) > 0 {
			w.send(batch)
		}
		if own == nil || own.sent || len(batch) == 0 {
			break
		}
	}
	clear(batch)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, op := range w.queue {
		if op.done != nil {
			op.done <- errPromoted // stays leader: op's goroutine takes over
			return
		}
	}
	w.leader = false
	if len(w.queue) > 0 && !w.armed {
		w.armed = true
		w.timer.Reset(flushDelay)
	}
}

// take moves the next batch from the queue to dst. With all (timer, close)
// that is the first maxBatch writes. Otherwise a leader carries the writes
// of the keys that have a waited write (final states) or a write a previous
// batch left behind, and leaves the other no-wait writes (STARTED,
// PROGRESS of tasks still running) queued, marked skipped: they usually
// ride with their own task's final state, where fold merges them into one
// script call, and never wait more than one more batch (or flushDelay, the
// timer armed when no leader follows). Every key's writes are taken or
// left together, so each key keeps its order. w.mu is held.
func (w *writer) take(dst []*writeOp, all bool) []*writeOp {
	n := min(len(w.queue), maxBatch)
	win := w.queue[:n]
	var keys []string
	var keySet map[string]struct{}
	if !all {
		for _, op := range win {
			if op.done == nil && !op.skipped {
				continue
			}
			if n > 16 {
				if keySet == nil {
					keySet = make(map[string]struct{}, n)
				}
				keySet[op.key] = struct{}{}
			} else if !slices.Contains(keys, op.key) {
				keys = append(keys, op.key)
			}
		}
		all = len(keys) == 0 && len(keySet) == 0
	}
	kept := 0
	for _, op := range win {
		carry := all
		if !carry {
			if keySet != nil {
				_, carry = keySet[op.key]
			} else {
				carry = slices.Contains(keys, op.key)
			}
		}
		if carry {
			dst = append(dst, op)
			continue
		}
		op.skipped = true
		w.queue[kept] = op
		kept++
	}
	kept += copy(w.queue[kept:], w.queue[n:])
	clear(w.queue[kept:])
	w.queue = w.queue[:kept]
	if kept == 0 {
		w.queue = nil
	}
	return dst
}

// fold returns the script calls for batch: a foldable write followed in
// the batch by a later write of the same key becomes part of that write
// (its pre), so a task's STARTED and PROGRESS states that travel with its
// final state cost one GET, one PUBLISH each and no SETEX and no script
// call of their own (storeFn). Writes keep their order within a key; only
// writes of different keys may change their relative order, which no
// reader can rely on. units is reused.
func fold(units, batch []*writeOp) []*writeOp {
	units = units[:0]
	var last map[string]*writeOp
	find := func(key string) *writeOp {
		if last != nil {
			return last[key]
		}
		for i := len(units) - 1; i >= 0; i-- { // the nearest successor
			if units[i].key == key {
				return units[i]
			}
		}
		return nil
	}
	if len(batch) > 16 {
		last = make(map[string]*writeOp, len(batch))
	}
	folded := false
	for i := len(batch) - 1; i >= 0; i-- { // backwards: a write's successor is known
		op := batch[i]
		if op.foldable {
			if u := find(op.key); u != nil {
				u.pre = append(u.pre, op) // reversed below
				folded = true
				continue
			}
		}
		units = append(units, op)
		if last != nil {
			last[op.key] = op
		}
	}
	slices.Reverse(units)
	if folded {
		for _, u := range units {
			slices.Reverse(u.pre)
		}
	}
	return units
}

// timerFlush sends queued no-wait writes nobody carried.
func (w *writer) timerFlush() {
	w.mu.Lock()
	w.armed = false
	if w.leader || len(w.queue) == 0 {
		w.mu.Unlock()
		return
	}
	w.leader = true
	w.mu.Unlock()
	w.lead(nil)
}

// close stops accepting writes, sends what is queued (bounded by the
// retries) and closes the connection.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	for {
		w.mu.Lock()
		if !w.leader {
			if len(w.queue) == 0 {
				w.timer.Stop()
				if w.rc != nil {
					w.rc.Close()
					w.rc = nil
				}
				w.mu.Unlock()
				return
			}
			w.leader = true
			w.mu.Unlock()
			w.lead(nil)
			continue
		}
		w.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

// conn returns the writer's connection, dialling it (with the scripts
// loaded) if needed.
func (w *writer) conn() (redis.Conn, error) {
	if w.rc != nil && w.rc.Err() == nil {
		return w.rc, nil
	}
	if w.rc != nil {
		w.rc.Close()
		w.rc = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.b.cfg.dialTimeout())
	defer cancel()
	rc, err := w.b.c.dial(ctx)
	if err != nil {
		return nil, err
	}
	if err := storeAckScript.Load(rc); err != nil {
		rc.Close()
		return nil, wrapErr("load store script", err)
	}
	if err := fetchScript.Load(rc); err != nil {
		rc.Close()
		return nil, wrapErr("load fetch script", err)
	}
	w.rc = rc
	return rc, nil
}

// send writes batch as one pipeline and delivers the replies; it resends
// the unanswered tail after connection errors. Folded fetches (writeOp
// fetch) are sent once, after the writes, as one fetchScript call popping
// one message per request, under the broker's fetch lock (skipped when the
// lock is busy, e.g. during a blocking BRPOP); they are never resent, so a
// connection error can at worst leave a popped message recorded as unacked
// until the visibility timeout restores it, as with Broker.Fetch.
func (w *writer) send(batch []*writeOp) {
	rdb, bdb := w.rb.c.ep.DB, w.b.c.ep.DB
	unacked, index := w.b.names.UnackedKey(), w.b.names.UnackedIndexKey()
	all := batch
	w.units = fold(w.units, batch)
	batch = w.units
	var fetches []*writeOp
	for _, op := range batch {
		if op.fetch != nil && (len(fetches) == 0 || slices.Equal(op.fetch.queues, fetches[0].fetch.queues)) {
			fetches = append(fetches, op)
		}
	}
	locked := len(fetches) > 0 && !w.b.c.isClosed() && w.b.fetchMu.TryLock()
	unlock := func() {
		if locked {
			w.b.fetchMu.Unlock()
			locked = false
		}
	}
	defer unlock()
	var err error
	for attempt := 1; attempt <= writerAttempts && len(batch) > 0; attempt++ {
		if attempt > 1 {
			unlock()
			_ = w.b.c.backoffWait(context.Background(), backoff(attempt-1))
		}
		var rc redis.Conn
		rc, err = w.conn()
		if err != nil {
			continue
		}
		for _, op := range batch {
			if len(op.pre) == 0 {
				err = storeAckScript.SendHash(rc, op.key, unacked, index, op.meta, w.rb.expires, op.tag, rdb, bdb)
			} else {
				args := make([]any, 0, 8+len(op.pre))
				args = append(args, op.key, unacked, index, op.meta, w.rb.expires, op.tag, rdb, bdb)
				for _, p := range op.pre {
					args = append(args, p.meta)
				}
				err = storeAckScript.SendHash(rc, args...)
			}
			if err != nil {
				break
			}
		}
		var order []string
		if err == nil && locked {
			order = w.b.order(fetches[0].fetch.queues)
			err = fetchScript.SendHash(rc, w.b.fetchArgs(order, len(fetches))...)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			err = wrapErr("store pipeline", err)
			w.rc.Close()
			w.rc = nil
			continue
		}
		i := 0
		broken := false
		for ; i < len(batch); i++ {
			n, rerr := redis.Int(rc.Receive())
			if rerr == nil {
				batch[i].stored = n == 1
				continue
			}
			var re redis.Error
			if errors.As(rerr, &re) {
				if strings.HasPrefix(string(re), "NOSCRIPT") {
					// The script cache was flushed under us: reload it
					// and resend from here, in order (later writes of
					// this batch ran already; repeating them is harmless
					// and keeps the final states last).
					err = wrapErr("store pipeline", rerr)
					w.drain(rc, len(batch)-i-1)
					broken = true
					break
				}
				batch[i].err = wrapErr("store result", rerr)
				continue
			}
			err = wrapErr("store pipeline", rerr)
			broken = true
			break
		}
		if order != nil {
			// The fetch reply follows the writes' replies.
			var ds []*protocol.Delivery
			var ferr error
			if broken {
				ferr = err
				if w.rc != nil && w.rc.Err() == nil {
					var vals []any
					if vals, ferr = redis.Values(rc.Receive()); ferr == nil {
						ds, ferr = w.b.parseFetch(order, vals)
					}
				}
			} else {
				var vals []any
				if vals, ferr = redis.Values(rc.Receive()); ferr == nil {
					ds, ferr = w.b.parseFetch(order, vals)
				} else {
					ferr = wrapErr("fetch script", ferr)
				}
			}
			for k, op := range fetches {
				if k < len(ds) {
					op.fetch.ds = ds[k : k+1]
				}
				op.fetch.err = ferr
			}
			unlock()
		}
		if broken {
			if e := storeAckScript.Load(rc); e != nil || rc.Err() != nil {
				w.rc.Close()
				w.rc = nil
			} else if e := fetchScript.Load(rc); e != nil {
				w.rc.Close()
				w.rc = nil
			}
		}
		batch = batch[i:]
	}
	for _, op := range batch {
		op.err = err
	}
	for _, u := range w.units {
		for _, p := range u.pre {
			p.stored, p.err = u.stored, u.err
		}
		clear(u.pre)
		u.pre = u.pre[:0]
	}
	clear(w.units)
	for _, op := range all {
		w.finish(op, op.err)
	}
}

// drain reads and drops n pending replies.
func (w *writer) drain(rc redis.Conn, n int) {
	for range n {
		if _, err := rc.Receive(); err != nil {
			var re redis.Error
			if !errors.As(err, &re) {
				return
			}
		}
	}
}

func (w *writer) finish(op *writeOp, err error) {
	op.sent = true
	if op.done != nil {
		op.done <- err
		return
	}
	if err != nil {
		w.log.Error("redis: result write failed", "key", op.key, "err", err)
	}
}

// errWriterClosed is returned for writes queued after Close.
var errWriterClosed = fmt.Errorf("%w: result backend", ErrClosed)
