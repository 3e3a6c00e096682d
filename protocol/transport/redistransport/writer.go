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
// wake-up), and batches are pipelined: a caller that waits for its write
// (Store, StoreAndAck) and finds nobody sending becomes the sender and
// sends everything queued so far, its own write included, on its own
// goroutine, then keeps sending while more waited writes are queued; it
// does not wait for the replies of earlier batches, so several batches
// can be in flight on the connection (at -c 2, each slot's final write
// goes out as soon as it is ready instead of after the other slot's round
// trip). Replies are read in send order by one reader at a time: the
// sender reads when nobody does; a reader whose own write is answered
// passes the reading on to a caller waiting in the next batch. Writes
// that are not waited for (StoreNoWait: STARTED, PROGRESS) are only
// queued: they go with the next batch — usually the final state of the
// same task — or at the latest after flushDelay, when a timer flushes
// them.
//
// One connection and one FIFO queue give the ordering guarantee the worker
// relies on: a STARTED or PROGRESS write queued without waiting always
// reaches Redis before the final state of the same task queued after it,
// so a final state is never followed by an earlier one. A final
// StoreAndAck waits for its reply: the ack is atomic with the stored
// result (same script), so acks-late still acks only a durably stored
// final state.
//
// On a connection error (or a flushed script cache) the reader stops the
// sending and sends every unanswered script call of every batch in flight
// again, in order, on a new connection (up to writerAttempts times in
// all), before any later batch; the store script's SUCCESS guard makes a
// repeated write harmless (a repeated STARTED cannot overwrite SUCCESS,
// and the final state is repeated after it). Folded fetches are not sent
// again (see recover).
type writer struct {
	rb  *ResultBackend
	b   *Broker
	log *slog.Logger

	mu       sync.Mutex
	queue    []*writeOp
	closed   bool
	sending  bool     // a goroutine sends batches (sendLoop); it owns rc
	reading  bool     // a goroutine reads replies (readLoop)
	inflight []*batch // sent, replies not all read yet; in send order
	armed    bool     // timer set for queued no-wait writes
	timer    *time.Timer

	rc redis.Conn // owned by the sender
}

// writeOp is one queued write.
type writeOp struct {
	key, tag string
	meta     []byte
	// done (buffered) receives the outcome, or errPromoted when the
	// waiter is to read the replies; nil for StoreNoWait (errors are logged).
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

// errPromoted tells a waiting caller that it reads the replies now.
var errPromoted = errors.New("redis: writer reading passed on")

func newWriter(rb *ResultBackend, b *Broker, log *slog.Logger) *writer {
	w := &writer{rb: rb, b: b, log: log}
	w.timer = time.AfterFunc(time.Hour, w.timerFlush)
	w.timer.Stop()
	return w
}

// enqueue queues op; for a waited op it also sends, when no other
// goroutine is sending, everything queued so far (sendLoop) and reads the
// replies when nobody is reading. The outcome comes through wait. False
// once the writer is closed.
func (w *writer) enqueue(op *writeOp) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, op)
	if op.done == nil {
		if !w.sending && !w.armed {
			w.armed = true
			w.timer.Reset(flushDelay)
		}
		w.mu.Unlock()
		return true
	}
	if w.sending { // the sender's loop takes op before it stops
		w.mu.Unlock()
		return true
	}
	w.sending = true
	w.mu.Unlock()
	w.sendLoop(false)
	w.tryRead(op)
	return true
}

// wait returns the outcome of a waited op, reading replies when the
// reader passes that job on to it.
func (w *writer) wait(op *writeOp) error {
	for {
		err := <-op.done
		if !errors.Is(err, errPromoted) {
			return err
		}
		w.readLoop(op)
	}
}

// sendLoop sends batches while waited writes are queued (the first batch
// takes every queued write with all), then lets go of sending. The
// caller set w.sending.
func (w *writer) sendLoop(all bool) {
	for {
		w.mu.Lock()
		if w.armed {
			w.armed = false
			w.timer.Stop()
		}
		var ops []*writeOp
		if all || hasWaited(w.queue) {
			ops = w.take(nil, all)
		}
		all = false
		if len(ops) == 0 {
			w.sending = false
			if len(w.queue) > 0 && !w.armed {
				w.armed = true
				w.timer.Reset(flushDelay)
			}
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.write(&batch{ops: ops})
	}
}

func hasWaited(q []*writeOp) bool {
	for _, op := range q {
		if op.done != nil {
			return true
		}
	}
	return false
}

// batch is one pipeline sent on the connection: its writes, folded into
// script calls, and at most one fetch.
type batch struct {
	ops     []*writeOp // every write taken (their outcomes are delivered)
	units   []*writeOp // script calls in send order (fold)
	fetches []*writeOp // writes whose fetch rides in this batch
	order   []string   // the fetch's queue order; nil: no fetch was sent
	rc      redis.Conn // the connection it was sent on
	sendErr error      // sending failed: the connection is broken
	next    int        // script replies read so far
}

// write sends b on the connection and appends it to the in-flight list.
// The caller is the sender (w.sending).
func (w *writer) write(b *batch) {
	b.units = fold(nil, b.ops)
	for _, op := range b.units {
		if op.fetch != nil && (len(b.fetches) == 0 || slices.Equal(op.fetch.queues, b.fetches[0].fetch.queues)) {
			b.fetches = append(b.fetches, op)
		}
	}
	// A fetch is folded unless a Fetch (a blocking BRPOP, usually: the
	// queues were empty) is running.
	if len(b.fetches) > 0 && !w.b.c.isClosed() && w.b.fetchMu.TryLock() {
		b.order = w.b.order(b.fetches[0].fetch.queues)
		w.b.fetchMu.Unlock()
	}
	var rc redis.Conn
	var err error
	w.mu.Lock()
	stale := w.rc != nil && w.rc.Err() != nil && len(w.inflight) > 0
	w.mu.Unlock()
	if stale {
		// Batches in flight were sent on the broken connection: they are
		// sent again first (recover), this one after them.
		err = wrapErr("store pipeline", w.rc.Err())
	} else if rc, err = w.conn(); err == nil {
		err = w.sendUnits(rc, b.units, b.order, len(b.fetches))
	}
	b.rc, b.sendErr = rc, err
	if err != nil && rc != nil {
		rc.Close() // a reader on it fails too and recovers
	}
	w.mu.Lock()
	w.inflight = append(w.inflight, b)
	w.mu.Unlock()
}

// sendUnits writes the script calls (and the fetch, with order) and
// flushes.
func (w *writer) sendUnits(rc redis.Conn, units []*writeOp, order []string, fetches int) error {
	rdb, bdb := w.rb.c.ep.DB, w.b.c.ep.DB
	unacked, index := w.b.names.UnackedKey(), w.b.names.UnackedIndexKey()
	var err error
	for _, op := range units {
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
			return wrapErr("store pipeline", err)
		}
	}
	if order != nil {
		if err := fetchScript.SendHash(rc, w.b.fetchArgs(order, fetches)...); err != nil {
			return wrapErr("store pipeline", err)
		}
	}
	if err := rc.Flush(); err != nil {
		return wrapErr("store pipeline", err)
	}
	return nil
}

// tryRead makes the caller the reader when nobody reads and replies are
// pending.
func (w *writer) tryRead(own *writeOp) {
	w.mu.Lock()
	if w.reading || len(w.inflight) == 0 {
		w.mu.Unlock()
		return
	}
	w.reading = true
	w.mu.Unlock()
	w.readLoop(own)
}

// readLoop reads the replies of the in-flight batches in send order and
// delivers their outcomes until own's outcome is delivered (nil: at
// once); then it passes reading on to a waiting writer of the next batch,
// or keeps reading when that batch has none (timer batches), or stops
// when nothing is in flight. The caller is the reader (w.reading).
func (w *writer) readLoop(own *writeOp) {
	for {
		w.mu.Lock()
		if len(w.inflight) == 0 {
			w.reading = false
			w.mu.Unlock()
			return
		}
		b := w.inflight[0]
		if own == nil || own.sent {
			if h := b.waiter(); h != nil {
				w.mu.Unlock()
				h.done <- errPromoted // h's goroutine reads from here on
				return
			}
		}
		w.mu.Unlock()
		if !w.read(b) {
			w.recover()
			continue
		}
		w.mu.Lock()
		w.inflight[0] = nil
		w.inflight = w.inflight[1:]
		if len(w.inflight) == 0 {
			w.inflight = nil
		}
		w.mu.Unlock()
		w.deliver(b.ops)
	}
}

// waiter is a write of b whose goroutine waits for it.
func (b *batch) waiter() *writeOp {
	for _, op := range b.ops {
		if op.done != nil {
			return op
		}
	}
	return nil
}

// read reads b's replies; false when the connection failed (or the
// script cache was flushed) before all of them were read: b.next tells
// how far it got.
func (w *writer) read(b *batch) bool {
	if b.sendErr != nil {
		return false
	}
	rc := b.rc
	for ; b.next < len(b.units); b.next++ {
		n, err := redis.Int(rc.Receive())
		if err == nil {
			b.units[b.next].stored = n == 1
			continue
		}
		var re redis.Error
		if !errors.As(err, &re) {
			return false
		}
		if strings.HasPrefix(string(re), "NOSCRIPT") {
			// The script cache was flushed under us: resend from here,
			// in order, on a connection that loads the scripts again
			// (later writes of this batch that ran already are
			// repeated, which is harmless and keeps the final states
			// last).
			return false
		}
		b.units[b.next].err = wrapErr("store result", err)
	}
	if b.order != nil {
		vals, err := redis.Values(rc.Receive())
		var ds []*protocol.Delivery
		if err == nil {
			ds, err = w.b.parseFetch(b.order, vals)
		} else {
			err = wrapErr("fetch script", err)
		}
		b.setFetched(ds, err)
		b.order = nil
		if err != nil && rc.Err() != nil {
			return false // the replies that follow are lost
		}
	}
	return true
}

// setFetched hands the fetched deliveries to the fetching writes.
func (b *batch) setFetched(ds []*protocol.Delivery, err error) {
	for k, op := range b.fetches {
		if k < len(ds) {
			op.fetch.ds = ds[k : k+1]
		}
		op.fetch.err = err
	}
}

// recover handles a broken connection (or a flushed script cache) found
// by the reader: it stops the sending, and sends every unanswered script
// call of the in-flight batches again, in order, on a new connection (up
// to writerAttempts in all), reading the replies itself and delivering
// every outcome. Fetches are never sent again (a message popped by a lost
// reply stays recorded as unacked until the visibility timeout restores
// it, as with Broker.Fetch). Writes queued meanwhile are sent afterwards.
func (w *writer) recover() {
	w.mu.Lock()
	for w.sending {
		w.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		w.mu.Lock()
	}
	w.sending = true
	rest := w.inflight
	w.inflight = nil
	w.mu.Unlock()
	if w.rc != nil {
		w.rc.Close()
		w.rc = nil
	}
	var units, ops []*writeOp
	err := errors.New("redis: connection lost")
	for _, b := range rest {
		if b.sendErr != nil {
			err = b.sendErr
		}
		if b.order != nil {
			b.setFetched(nil, wrapErr("fetch script", err))
		}
		units = append(units, b.units[b.next:]...)
		ops = append(ops, b.ops...)
	}
	for attempt := 2; attempt <= writerAttempts && len(units) > 0; attempt++ {
		_ = w.b.c.backoffWait(context.Background(), backoff(attempt-1))
		rc, cerr := w.conn()
		if cerr != nil {
			err = cerr
			continue
		}
		b := &batch{units: units, rc: rc}
		if err = w.sendUnits(rc, units, nil, 0); err == nil && w.read(b) {
			units = nil
			break
		}
		if err == nil {
			err = wrapErr("store pipeline", errors.New("connection lost"))
			if rc.Err() != nil {
				err = wrapErr("store pipeline", rc.Err())
			}
		}
		units = units[b.next:]
		w.rc.Close()
		w.rc = nil
	}
	for _, u := range units {
		u.err = err
	}
	w.deliver(ops)
	w.sendLoop(false) // writes queued while the connection was being replaced
}

// deliver hands the outcomes of ops to their callers; a folded write
// gets the outcome of the script call it rode in.
func (w *writer) deliver(ops []*writeOp) {
	for _, op := range ops {
		for _, p := range op.pre {
			p.stored, p.err = op.stored, op.err
		}
	}
	for _, op := range ops {
		w.finish(op, op.err)
	}
}

// timerFlush sends queued no-wait writes nobody carried.
func (w *writer) timerFlush() {
	w.mu.Lock()
	w.armed = false
	if w.sending || len(w.queue) == 0 {
		w.mu.Unlock()
		return
	}
	w.sending = true
	w.mu.Unlock()
	w.sendLoop(true)
	w.tryRead(nil)
}

// close stops accepting writes, sends what is queued (bounded by the
// retries), waits for every reply and closes the connection.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	for {
		switch {
		case w.sending || w.reading:
			w.mu.Unlock()
			time.Sleep(time.Millisecond)
			w.mu.Lock()
			continue
		case len(w.queue) > 0:
			w.sending = true
			w.mu.Unlock()
			w.sendLoop(true)
			w.tryRead(nil)
			w.mu.Lock()
			continue
		case len(w.inflight) > 0:
			w.reading = true
			w.mu.Unlock()
			w.readLoop(nil)
			w.mu.Lock()
			continue
		}
		break
	}
	w.timer.Stop()
	if w.rc != nil {
		w.rc.Close()
		w.rc = nil
	}
	w.mu.Unlock()
}

// take moves the next batch from the queue to dst. With all (timer, close)
// that is the first maxBatch writes. Otherwise a sender carries the writes
// of the keys that have a waited write (final states) or a write a previous
// batch left behind, and leaves the other no-wait writes (STARTED,
// PROGRESS of tasks still running) queued, marked skipped: they usually
// ride with their own task's final state, where fold merges them into one
// script call, and never wait more than one more batch (or flushDelay, the
// timer armed when no sender follows). Every key's writes are taken or
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

// conn returns the writer's connection, dialling it (with the scripts
// loaded) if needed. w.mu is held; only the sender or the recovering
// reader calls it, and it does not replace a connection that batches in
// flight were sent on (those fail and the reader recovers).
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
	rc, err := w.b.c.dial(ctx, spinDialer(w.b.cfg.dialTimeout(), w.b.cfg.replySpin()))
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
