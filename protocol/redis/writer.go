package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
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
	w.rc = rc
	return rc, nil
}

// send writes batch as one pipeline and delivers the replies; it resends
// the unanswered tail after connection errors.
func (w *writer) send(batch []*writeOp) {
	rdb, bdb := w.rb.c.ep.DB, w.b.c.ep.DB
	unacked, index := w.b.names.UnackedKey(), w.b.names.UnackedIndexKey()
	var err error
	for attempt := 1; attempt <= writerAttempts && len(batch) > 0; attempt++ {
		if attempt > 1 {
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
		for ; i < len(batch); i++ {
			n, rerr := redis.Int(rc.Receive())
			if rerr == nil {
				batch[i].stored = n == 1
				w.finish(batch[i], nil)
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
					if lerr := storeAckScript.Load(rc); lerr != nil {
						w.rc.Close()
						w.rc = nil
					}
					break
				}
				w.finish(batch[i], wrapErr("store result", rerr))
				continue
			}
			err = wrapErr("store pipeline", rerr)
			w.rc.Close()
			w.rc = nil
			break
		}
		batch = batch[i:]
	}
	for _, op := range batch {
		w.finish(op, err)
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
