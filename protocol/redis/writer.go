package redis

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
// the process goes through one goroutine and one dedicated connection, in
// the order the writes were queued. The goroutine takes everything queued
// while it was busy, sends it as one pipeline of EVALSHA storeAckScript
// calls (one write + one read syscall, one Redis read event for the lot),
// then hands each caller its reply.
//
// One connection and one FIFO queue give the ordering guarantee the worker
// relies on: a STARTED or PROGRESS write queued without waiting
// (StoreNoWait) always reaches Redis before the final state of the same
// task queued after it, so a final state is never followed by an earlier
// one. A final StoreAndAck waits for its reply: the ack is atomic with the
// stored result (same script), so acks-late still acks only a durably
// stored final state.
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

	mu      sync.Mutex
	queue   []*writeOp
	closed  bool
	running bool
	wake    chan struct{}
	done    chan struct{}

	rc redis.Conn // owned by the goroutine
}

// writeOp is one queued write.
type writeOp struct {
	key, tag string
	meta     []byte
	// done (buffered) receives the outcome; nil for StoreNoWait (errors
	// are logged). stored is set before: false when an existing SUCCESS
	// prevented the write.
	done   chan error
	stored bool
	err    error // outcome, kept until the batch is finished
	// fetch, when set on a waited write, asks for one more message to be
	// popped (fetchScript) in the same pipeline, right after the writes.
	fetch *fetchReq
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

func newWriter(rb *ResultBackend, b *Broker, log *slog.Logger) *writer {
	return &writer{rb: rb, b: b, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// enqueue queues op; false once the writer is closed.
func (w *writer) enqueue(op *writeOp) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.queue = append(w.queue, op)
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// close stops accepting writes, lets the goroutine finish what is queued
// (bounded by its retries) and closes the connection.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	running := w.running
	w.mu.Unlock()
	if !running {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}

func (w *writer) loop() {
	defer close(w.done)
	defer func() {
		if w.rc != nil {
			w.rc.Close()
		}
	}()
	var batch []*writeOp
	for {
		w.mu.Lock()
		n := min(len(w.queue), maxBatch)
		batch = append(batch[:0], w.queue[:n]...)
		clear(w.queue[:n])
		w.queue = w.queue[n:]
		if len(w.queue) == 0 {
			w.queue = nil
		}
		closed := w.closed
		w.mu.Unlock()
		if len(batch) == 0 {
			if closed {
				return
			}
			<-w.wake
			continue
		}
		w.send(batch)
		clear(batch)
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
			time.Sleep(backoff(attempt - 1))
		}
		var rc redis.Conn
		rc, err = w.conn()
		if err != nil {
			continue
		}
		for _, op := range batch {
			err = storeAckScript.SendHash(rc, op.key, unacked, index, op.meta, w.rb.expires, op.tag, rdb, bdb)
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
