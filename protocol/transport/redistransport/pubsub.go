package redistransport

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Message is one pub/sub message received by Subscribe.
type Message struct {
	// Pattern is the PSUBSCRIBE pattern that matched.
	Pattern string
	// Channel is the channel as received (global key prefix included; use
	// Names.ParseFanoutChannel to get exchange and routing key).
	Channel string
	// Data is the payload (normally a kombu envelope).
	Data []byte
}

// pubsub health: a PING is sent when the connection was idle this long,
// and a connection silent for twice as long is considered dead.
const pubsubPing = 10 * time.Second

// Subscribe PSUBSCRIBEs to patterns (complete channel names, e.g.
// Names.PidboxChannel(), Names.FanoutPattern("celeryev", "#")) on a
// dedicated connection and delivers messages until ctx is done; then the
// channel is closed. The first connection is made before Subscribe returns
// (so an unreachable server is reported); later connection failures are
// retried with backoff and logged, and messages published while
// disconnected are lost (pub/sub has no memory, as with kombu).
func (b *Broker) Subscribe(ctx context.Context, patterns ...string) (<-chan Message, error) {
	if len(patterns) == 0 {
		return nil, errors.New("redis: Subscribe needs at least one pattern")
	}
	psc, err := b.psubscribe(ctx, patterns)
	if err != nil {
		return nil, err
	}
	out := make(chan Message, 256)
	go b.subscribeLoop(ctx, psc, patterns, out)
	return out, nil
}

func (b *Broker) psubscribe(ctx context.Context, patterns []string) (*redis.PubSubConn, error) {
	if b.c.isClosed() {
		return nil, ErrClosed
	}
	rc, err := b.c.dial(ctx)
	if err != nil {
		return nil, err
	}
	psc := &redis.PubSubConn{Conn: rc}
	args := make([]any, len(patterns))
	for i, p := range patterns {
		args[i] = p
	}
	if err := psc.PSubscribe(args...); err != nil {
		rc.Close()
		return nil, wrapErr("PSUBSCRIBE", err)
	}
	// Wait for the confirmations so that nothing published after
	// Subscribe returned is missed.
	for range patterns {
		switch v := psc.ReceiveWithTimeout(b.cfg.readTimeout()).(type) {
		case redis.Subscription:
		case error:
			rc.Close()
			return nil, wrapErr("PSUBSCRIBE", v)
		default:
			rc.Close()
			return nil, fmt.Errorf("%w: PSUBSCRIBE answered %T", ErrUnexpected, v)
		}
	}
	return psc, nil
}

func (b *Broker) subscribeLoop(ctx context.Context, psc *redis.PubSubConn, patterns []string, out chan<- Message) {
	defer close(out)
	fails := 0
	for {
		err := b.receive(ctx, psc, out)
		psc.Close()
		if ctx.Err() != nil || b.c.isClosed() {
			return
		}
		b.log.Warn("redis: pub/sub connection lost; reconnecting", "error", err)
		for {
			fails++
			if b.c.backoffWait(ctx, backoff(fails)) != nil || b.c.isClosed() {
				return
			}
			psc, err = b.psubscribe(ctx, patterns)
			if err == nil {
				fails = 0
				break
			}
			if ctx.Err() != nil {
				return
			}
			b.log.Warn("redis: pub/sub reconnect failed", "error", err, "attempt", fails)
		}
	}
}

// receive reads messages until an error or ctx is done.
func (b *Broker) receive(ctx context.Context, psc *redis.PubSubConn, out chan<- Message) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() { // ping while idle; unblock the reader on cancel
		t := time.NewTicker(pubsubPing)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				psc.Close()
				return
			case <-t.C:
				if psc.Ping("") != nil {
					return
				}
			}
		}
	}()
	for {
		switch v := psc.ReceiveWithTimeout(3 * pubsubPing).(type) {
		case redis.Message:
			m := Message{Pattern: v.Pattern, Channel: v.Channel, Data: v.Data}
			select {
			case out <- m:
			case <-ctx.Done():
				return ctx.Err()
			}
		case redis.Subscription, redis.Pong:
		case error:
			return v
		}
	}
}

// PublishFanout PUBLISHes payload on a channel (complete name, e.g.
// Names.EventChannel("worker-heartbeat") or Names.PidboxChannel());
// failures go to the OnMailboxError hook.
func (b *Broker) PublishFanout(ctx context.Context, channel string, payload []byte) error {
	_, err := b.c.do(ctx, "PUBLISH", channel, payload)
	return b.fail("publish", err)
}

// Reply publishes envelope to a direct exchange the way kombu routes it:
// SMEMBERS _kombu.binding.<exchange>, LPUSH to every queue whose binding
// routing key equals routingKey (the remote-control reply path, spec §4.4).
// No matching binding: the reply is dropped silently (the client gave up).
// Failures go to the OnMailboxError hook.
func (b *Broker) Reply(ctx context.Context, exchange, routingKey string, envelope []byte) error {
	return b.fail("reply", b.reply(ctx, exchange, routingKey, envelope))
}

func (b *Broker) reply(ctx context.Context, exchange, routingKey string, envelope []byte) error {
	rc, err := b.c.get(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	members, err := redis.Strings(rc.Do("SMEMBERS", b.names.BindingKey(exchange)))
	if err != nil {
		return wrapErr("SMEMBERS", err)
	}
	var keys []string
	for _, m := range members {
		rk, _, q, ok := b.names.ParseBindingMember(m)
		if ok && rk == routingKey {
			keys = append(keys, b.names.QueueKey(q, 0))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		_ = rc.Send("LPUSH", k, envelope)
	}
	if err := rc.Flush(); err != nil {
		return wrapErr("LPUSH", err)
	}
	for range keys {
		if _, err := rc.Receive(); err != nil {
			return wrapErr("LPUSH", err)
		}
	}
	return nil
}
