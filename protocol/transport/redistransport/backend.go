package redistransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
)

// ResultBackend is the Celery Redis result backend (write side, plus Get).
// It satisfies worker.ResultBackend. Its URL may name another database or
// server than the broker's, so it has its own pool.
type ResultBackend struct {
	c       *client
	names   protocol.Names
	expires string // SETEX seconds, "0" = plain SET
	broker  *Broker
	log     *slog.Logger
	// w is the group-commit writer, set by UseBroker when the broker is
	// on the same server: then every write goes through it, in order.
	w *writer
	// chordUnordered is result_chord_ordered=False (chord.go).
	chordUnordered bool
}

// NewResultBackend returns a result backend for a redis://, rediss:// or
// unix:// URL (CELERY_RESULT_BACKEND). Config.ResultExpires and
// Config.ResultKeyPrefix apply; the broker options are ignored.
func NewResultBackend(url string, cfg Config) (*ResultBackend, error) {
	ep, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	c, err := newClient(ep, cfg)
	if err != nil {
		return nil, err
	}
	return &ResultBackend{
		c:       c,
		names:   cfg.Names(ep.DB),
		expires: strconv.FormatInt(cfg.resultExpiresSeconds(), 10),
		log:     cfg.logger(),
	}, nil
}

// UseBroker lets StoreAndAck acknowledge deliveries of b. When b is on the
// same server as the backend, StoreAndAck is one atomic script, and every
// write (Store, StoreRaw, StoreNoWait, StoreAndAck) goes, in call order,
// through one group-commit goroutine and connection that pipelines the
// writes queued meanwhile (see writer). Call it before the first write.
func (r *ResultBackend) UseBroker(b *Broker) {
	r.broker = b
	if b != nil && b.c.ep.sameServer(r.c.ep) && r.w == nil {
		r.w = newWriter(r, b, r.log)
	}
}

// Close flushes queued writes and closes the connections.
func (r *ResultBackend) Close() error {
	if r.w != nil {
		r.w.close()
	}
	return r.c.close()
}

// write queues one write on the group-commit writer and waits for it. It
// takes no ctx: the write is bounded by the connection timeouts, and a
// waiter may have to lead the flush of other callers' writes.
func (r *ResultBackend) write(key string, meta []byte, tag string) (stored bool, err error) {
	op := &writeOp{key: key, meta: meta, tag: tag, done: make(chan error, 1)}
	if !r.w.enqueue(op) {
		return false, errWriterClosed
	}
	err = r.w.wait(op)
	return op.stored, err
}

// StoreNoWait queues meta for writing and returns without waiting for
// Redis (only an encoding error is returned). A failed write is retried
// and then logged. Writes keep their call order relative to every other
// write of this backend, so a STARTED or PROGRESS state queued here is
// always stored before a final state written later for the same task.
// Without a same-server broker (UseBroker) it is Store.
func (r *ResultBackend) StoreNoWait(ctx context.Context, meta *protocol.ResultMeta) error {
	if r.w == nil {
		return r.Store(ctx, meta)
	}
	raw, err := protocol.EncodeResultMeta(meta)
	if err != nil {
		return fmt.Errorf("redis: encode result meta: %w", err)
	}
	if meta.TaskID == "" {
		return errors.New("redis: result without task id")
	}
	op := &writeOp{key: r.names.ResultKey(meta.TaskID), meta: raw, foldable: meta.Status != protocol.StateSuccess}
	if !r.w.enqueue(op) {
		return errWriterClosed
	}
	return nil
}

// Ping checks that the server answers.
func (r *ResultBackend) Ping(ctx context.Context) error {
	_, err := r.c.do(ctx, "PING")
	return err
}

// Key is the result key (and PUBLISH channel) of a task id.
func (r *ResultBackend) Key(taskID string) string { return r.names.ResultKey(taskID) }

// Store writes meta the way celery's Redis backend does (spec §3.1): if
// the stored state is SUCCESS nothing is written; else SETEX <expires>
// (SET when expires is disabled) and PUBLISH the same bytes on the key.
// One EVALSHA does GET-check, SETEX and PUBLISH atomically.
func (r *ResultBackend) Store(ctx context.Context, meta *protocol.ResultMeta) error {
	raw, err := protocol.EncodeResultMeta(meta)
	if err != nil {
		return fmt.Errorf("redis: encode result meta: %w", err)
	}
	_, err = r.StoreRaw(ctx, meta.TaskID, raw)
	return err
}

// StoreRaw is Store for an already encoded meta; stored is false when an
// existing SUCCESS state prevented the write.
func (r *ResultBackend) StoreRaw(ctx context.Context, taskID string, meta []byte) (stored bool, err error) {
	if taskID == "" {
		return false, errors.New("redis: result without task id")
	}
	if r.w != nil {
		return r.write(r.names.ResultKey(taskID), meta, "")
	}
	rc, err := r.c.get(ctx)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	n, err := redis.Int(storeScript.Do(rc, r.names.ResultKey(taskID), meta, r.expires))
	if err != nil {
		return false, wrapErr("store result", err)
	}
	return n == 1, nil
}

// StoreAndAck stores meta and acknowledges d (Broker.Ack) — the acks_late
// completion of a task — in one atomic round trip when the broker attached
// with UseBroker is on the same server (the script SELECTs the result
// database if it differs from the broker's). Otherwise it is Store then Ack.
// d may be nil or have no tag (then it is just Store).
func (r *ResultBackend) StoreAndAck(ctx context.Context, meta *protocol.ResultMeta, d *protocol.Delivery) error {
	raw, err := protocol.EncodeResultMeta(meta)
	if err != nil {
		return fmt.Errorf("redis: encode result meta: %w", err)
	}
	if meta.TaskID == "" {
		return errors.New("redis: result without task id")
	}
	tag := ""
	if d != nil {
		tag = d.Tag
	}
	if r.w != nil {
		_, err := r.write(r.names.ResultKey(meta.TaskID), raw, tag)
		return err
	}
	b := r.broker
	if tag == "" || b == nil || !b.c.ep.sameServer(r.c.ep) {
		if _, err := r.StoreRaw(ctx, meta.TaskID, raw); err != nil {
			return err
		}
		if tag == "" {
			return nil
		}
		if b == nil {
			return errors.New("redis: StoreAndAck without UseBroker")
		}
		return b.AckTags(ctx, tag)
	}
	rc, err := b.c.get(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = storeAckScript.Do(rc, r.names.ResultKey(meta.TaskID), b.names.UnackedKey(), b.names.UnackedIndexKey(),
		raw, r.expires, tag, r.c.ep.DB, b.c.ep.DB)
	if err != nil {
		return wrapErr("store+ack script", err)
	}
	return nil
}

// StoreAckFetch is StoreAndAck that also pops and records (as Fetch does,
// without blocking) one message from queues in the same round trip, when
// it can: the group-commit writer is in use and no Fetch is running at
// the time. It returns the popped delivery, if any, even when the store
// failed; the caller owns it then exactly as a Fetch result.
func (r *ResultBackend) StoreAckFetch(ctx context.Context, meta *protocol.ResultMeta, d *protocol.Delivery, queues []string) ([]*protocol.Delivery, error) {
	if r.w == nil || d == nil || d.Tag == "" || len(queues) == 0 {
		return nil, r.StoreAndAck(ctx, meta, d)
	}
	raw, err := protocol.EncodeResultMeta(meta)
	if err != nil {
		return nil, fmt.Errorf("redis: encode result meta: %w", err)
	}
	if meta.TaskID == "" {
		return nil, errors.New("redis: result without task id")
	}
	op := &writeOp{key: r.names.ResultKey(meta.TaskID), meta: raw, tag: d.Tag,
		done: make(chan error, 1), fetch: &fetchReq{queues: queues}}
	if !r.w.enqueue(op) {
		return nil, errWriterClosed
	}
	// Wait for the reply even if ctx ends: the fetched message must not
	// be dropped.
	err = r.w.wait(op)
	if op.fetch.err != nil {
		r.log.Warn("redis: fetch folded into a result write failed", "err", op.fetch.err)
	}
	return op.fetch.ds, err
}

// GetRaw returns the stored meta JSON of a task, nil when there is none
// (the task is PENDING or its result expired).
func (r *ResultBackend) GetRaw(ctx context.Context, taskID string) ([]byte, error) {
	v, err := redis.Bytes(r.c.do(ctx, "GET", r.names.ResultKey(taskID)))
	if errors.Is(err, redis.ErrNil) {
		return nil, nil
	}
	return v, err
}

// Get returns the stored state of a task; a missing key reads as PENDING
// (as AsyncResult does).
func (r *ResultBackend) Get(ctx context.Context, taskID string) (*protocol.ResultMeta, error) {
	raw, err := r.GetRaw(ctx, taskID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return &protocol.ResultMeta{Status: protocol.StatePending, TaskID: taskID}, nil
	}
	m, err := protocol.DecodeResultMeta(raw)
	if err != nil {
		return nil, fmt.Errorf("redis: result of %s: %w", taskID, err)
	}
	return m, nil
}
