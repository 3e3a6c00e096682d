package redistransport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// This file holds the plain-list and pub/sub operations of the pidbox
// mailbox (remote control, mingle) and of the metrics endpoint. With
// SubscribePayloads, PublishFanout, Reply, AddBinding and RemoveBinding they make
// *Broker satisfy worker/control.Mailbox, worker/events.Publisher and
// worker/metrics.Broker without an adapter.

// OnMailboxError installs fn, called with the operation's name ("subscribe",
// "publish", "reply", "sadd", "srem", "brpop", "del") whenever one of the
// mailbox operations (SubscribePayloads, PublishFanout, Reply, AddBinding,
// RemoveBinding, PopReply, DeleteQueue) fails: the metrics' Redis error
// counter. The consume path (Fetch, Ack...) does not report here; the
// worker runtime counts its own failures.
func (b *Broker) OnMailboxError(fn func(op string)) { b.mailboxErr.Set(fn) }

// fail reports err (if not nil) to the OnMailboxError hook and returns it.
func (b *Broker) fail(op string, err error) error { return b.mailboxErr.Fail(op, err) }

// SubscribePayloads is Subscribe for one pattern, delivering only the
// payloads (what a pidbox server reads).
func (b *Broker) SubscribePayloads(ctx context.Context, pattern string) (<-chan []byte, error) {
	in, err := b.Subscribe(ctx, pattern)
	if err != nil {
		return nil, b.fail("subscribe", err)
	}
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		for msg := range in {
			select {
			case out <- msg.Data:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// PopReply waits up to timeout (rounded to whole seconds, at least one)
// for one message of the plain list queue, priority 0 (BRPOP of a mingle
// or broadcast reply queue); nil, nil on timeout.
func (b *Broker) PopReply(ctx context.Context, queue string, timeout time.Duration) ([]byte, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return nil, b.fail("brpop", err)
	}
	defer rc.Close()
	secs := max(int(timeout.Round(time.Second)/time.Second), 1)
	v, err := redis.Values(redis.DoWithTimeout(rc, timeout+5*time.Second, "BRPOP", b.names.QueueKey(queue, 0), secs))
	if errors.Is(err, redis.ErrNil) {
		return nil, nil
	}
	if err != nil || len(v) != 2 {
		return nil, b.fail("brpop", fmt.Errorf("BRPOP %s: %w", queue, wrapErr("BRPOP", err)))
	}
	msg, _ := v[1].([]byte)
	return msg, nil
}

// DeleteQueue deletes every priority sub-list of queue (a reply queue
// that is no longer read).
func (b *Broker) DeleteQueue(ctx context.Context, queue string) error {
	keys := b.names.QueueKeys(queue)
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	_, err := b.c.do(ctx, "DEL", args...)
	return b.fail("del", err)
}

// QueueLengths returns LLEN of every priority sub-list of queue, keyed by
// priority step (0, 3, 6, 9): the metrics' queue-length gauge.
func (b *Broker) QueueLengths(ctx context.Context, queue string) (map[int]int, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[int]int{}
	for _, p := range []int{0, 3, 6, 9} {
		n, err := redis.Int(rc.Do("LLEN", b.names.QueueKey(queue, p)))
		if err != nil {
			return nil, wrapErr("LLEN", err)
		}
		out[b.names.PriorityStep(p)] += n
	}
	return out, nil
}

// Dial opens one connection to ep (AUTH, SELECT, CLIENT SETNAME and TLS
// as for the Broker's own connections) for a caller that drives Redis
// directly, such as the load generator's pipelined LPUSH and its result
// subscription. cfg.ReadTimeout < 0 means no read deadline (a connection
// that waits on pub/sub). The caller closes the connection.
func Dial(ctx context.Context, ep Endpoint, cfg Config) (redis.Conn, error) {
	if ep.TLS {
		if _, err := ep.tlsConfig(cfg.TLSConfig); err != nil {
			return nil, err
		}
	}
	c := &client{ep: ep, cfg: cfg}
	if len(ep.Sentinels) > 0 { // one connection: no watcher
		if ep.MasterName == "" {
			ep.MasterName = cfg.MasterName
		}
		r, err := newResolver(ep, cfg)
		if err != nil {
			return nil, err
		}
		c.ep, c.sent = ep, r
	}
	return c.dial(ctx)
}
