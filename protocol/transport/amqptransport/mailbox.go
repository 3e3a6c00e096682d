package amqptransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/omicsomics/omics-worker/protocol"
)

// Remote control, mingle and events over kombu's AMQP topology:
//
//	celery.pidbox        fanout, durable=false, auto_delete=false
//	<node>.celery.pidbox queue, durable=false, auto_delete=true,
//	                     x-message-ttl=300000, x-expires=10000
//	reply.celery.pidbox  direct, durable=false, auto_delete=false
//	<oid>.reply.celery.pidbox queue (mingle), same arguments, key <oid>
//	celeryev             topic, durable=true, auto_delete=false
//
// The runtime addresses these with the Redis transport's names (channels
// "/0.celery.pidbox", "/0.celeryev/worker.heartbeat" and binding members);
// the methods below map them onto exchanges, queues and routing keys.

// pidboxState is the node's mailbox consumer, re-created on reconnect.
type pidboxState struct {
	queue string
	sink  chan []byte
	ctx   context.Context
	mu    sync.Mutex // guards sends on sink against its close
}

// OnMailboxError installs fn, called with the operation's name whenever a
// mailbox operation fails (the metrics' broker error counter).
func (b *Broker) OnMailboxError(fn func(op string)) { b.mailboxErr.Set(fn) }

// fail reports err (if not nil) to the OnMailboxError hook and returns it.
func (b *Broker) fail(op string, err error) error { return b.mailboxErr.Fail(op, err) }

// ErrUnsupported is returned for a subscription other than the pidbox.
var ErrUnsupported = errors.New("amqp: unsupported subscription")

// SubscribePayloads returns the channel the pidbox requests arrive on;
// the consumer itself starts with AddBinding(celery.pidbox, <node queue>).
// The channel is closed when ctx is done.
func (b *Broker) SubscribePayloads(ctx context.Context, pattern string) (<-chan []byte, error) {
	if ex, _ := b.names.ParseFanoutChannel(pattern); ex != protocol.PidboxExchange {
		return nil, fmt.Errorf("%w: %q", ErrUnsupported, pattern)
	}
	sink := make(chan []byte, 64)
	pb := &pidboxState{sink: sink, ctx: ctx}
	b.mu.Lock()
	b.pidbox = pb
	b.mu.Unlock()
	go func() {
		<-ctx.Done()
		pb.mu.Lock()
		close(sink)
		pb.mu.Unlock()
	}()
	return sink, nil
}

func (b *Broker) controlArgs() amqp.Table {
	return amqp.Table{
		"x-message-ttl": int32(b.cfg.controlTTL() / time.Millisecond),
		"x-expires":     int32(b.cfg.controlExpires() / time.Millisecond),
	}
}

// declareExchange declares an exchange once per session.
func (b *Broker) declareExchange(s *session, name string) error {
	if s.isDeclared("x:" + name) {
		return nil
	}
	kind, durable := "direct", true
	switch name {
	case protocol.PidboxExchange:
		kind, durable = "fanout", false
	case protocol.ReplyExchange:
		durable = false
	case protocol.EventExchange:
		kind = "topic"
	}
	err := s.withTemp(func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare(name, kind, durable, false, false, false, nil)
	})
	if err != nil {
		return fmt.Errorf("amqp: declare exchange %s: %w", name, err)
	}
	s.setDeclared("x:" + name)
	return nil
}

// startPidbox declares the node's pidbox queue, binds it to the fanout
// exchange and consumes it into the sink.
func (b *Broker) startPidbox(s *session, pb *pidboxState) error {
	if pb.queue == "" || pb.ctx.Err() != nil {
		return nil
	}
	if err := b.declareExchange(s, protocol.PidboxExchange); err != nil {
		return err
	}
	err := s.withTemp(func(ch *amqp.Channel) error {
		if _, err := ch.QueueDeclare(pb.queue, false, true, false, false, b.controlArgs()); err != nil {
			return err
		}
		return ch.QueueBind(pb.queue, "", protocol.PidboxExchange, false, nil)
	})
	if err != nil {
		return fmt.Errorf("amqp: declare pidbox queue %s: %w", pb.queue, err)
	}
	s.ctlMu.Lock()
	ds, err := s.ctl.Consume(pb.queue, "pidbox."+pb.queue, true, false, false, false, nil)
	s.ctlMu.Unlock()
	if err != nil {
		return fmt.Errorf("amqp: consume %s: %w", pb.queue, err)
	}
	go func() {
		for d := range ds {
			raw, err := toEnvelope(&d, "")
			if err != nil {
				b.log.Warn("amqp: undecodable pidbox message dropped", "err", err)
				continue
			}
			pb.mu.Lock()
			if pb.ctx.Err() == nil {
				select {
				case pb.sink <- raw:
				default:
					b.log.Warn("amqp: pidbox backlog full; request dropped")
				}
			}
			pb.mu.Unlock()
		}
	}()
	return nil
}

// AddBinding binds a queue: the node's pidbox queue to celery.pidbox
// (starting its consumer), a mingle reply queue to reply.celery.pidbox,
// or a task queue to another exchange (add_consumer with an exchange).
func (b *Broker) AddBinding(ctx context.Context, exchange, member string) error {
	rk, _, q, ok := b.names.ParseBindingMember(member)
	if !ok {
		return fmt.Errorf("amqp: bad binding member %q", member)
	}
	s, err := b.session(ctx)
	if err != nil {
		return b.fail("bind", err)
	}
	switch exchange {
	case protocol.PidboxExchange:
		b.mu.Lock()
		pb := b.pidbox
		if pb != nil {
			pb.queue = q
		}
		b.mu.Unlock()
		if pb == nil {
			return errors.New("amqp: AddBinding(celery.pidbox) before SubscribePayloads")
		}
		return b.fail("bind", b.startPidbox(s, pb))
	case protocol.ReplyExchange:
		if err := b.declareExchange(s, exchange); err != nil {
			return b.fail("bind", err)
		}
		return b.fail("bind", s.withTemp(func(ch *amqp.Channel) error {
			if _, err := ch.QueueDeclare(q, false, true, false, false, b.controlArgs()); err != nil {
				return err
			}
			return ch.QueueBind(q, rk, exchange, false, nil)
		}))
	default:
		if err := b.declareExchange(s, exchange); err != nil {
			return b.fail("bind", err)
		}
		return b.fail("bind", s.withTemp(func(ch *amqp.Channel) error {
			return ch.QueueBind(q, rk, exchange, false, nil)
		}))
	}
}

// RemoveBinding stops the pidbox consumer (its auto-delete queue goes
// away); other bindings are left to the queue's deletion or expiry.
func (b *Broker) RemoveBinding(ctx context.Context, exchange, member string) error {
	if exchange != protocol.PidboxExchange {
		return nil
	}
	b.mu.Lock()
	pb, s := b.pidbox, b.sess
	b.pidbox = nil
	b.mu.Unlock()
	if pb == nil || s == nil || !s.alive() {
		return nil
	}
	s.ctlMu.Lock()
	err := s.ctl.Cancel("pidbox."+pb.queue, false)
	s.ctlMu.Unlock()
	return b.fail("unbind", err)
}

// PublishFanout publishes envelope on a runtime channel name: the pidbox
// channel → celery.pidbox (fanout), an event channel → celeryev with the
// event's routing key (topic). Transient, no confirm wait.
func (b *Broker) PublishFanout(ctx context.Context, channel string, envelope []byte) error {
	ex, rk := b.names.ParseFanoutChannel(channel)
	return b.fail("publish", b.publishTo(ctx, ex, rk, envelope))
}

// Reply publishes a control reply to the reply exchange with the
// client's routing key; a reply nobody waits for is dropped by RabbitMQ.
func (b *Broker) Reply(ctx context.Context, exchange, routingKey string, envelope []byte) error {
	return b.fail("reply", b.publishTo(ctx, exchange, routingKey, envelope))
}

func (b *Broker) publishTo(ctx context.Context, ex, rk string, envelope []byte) error {
	p, err := toPublishing(envelope, amqp.Transient)
	if err != nil {
		return err
	}
	s, err := b.session(ctx)
	if err != nil {
		return err
	}
	if ex != "" {
		if err := b.declareExchange(s, ex); err != nil {
			return err
		}
	}
	return b.publishNoWait(ctx, s, ex, rk, p)
}

// PopReply polls queue (basic.get, no-ack, on a channel of its own: a
// queue that expired meanwhile closes only that channel) up to timeout for
// one message; nil, nil on timeout.
func (b *Broker) PopReply(ctx context.Context, queue string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	s, err := b.session(ctx)
	if err != nil {
		return nil, b.fail("get", err)
	}
	var raw []byte
	err = s.withTemp(func(ch *amqp.Channel) error {
		for {
			d, ok, err := ch.Get(queue, true)
			if err != nil {
				return fmt.Errorf("amqp: basic.get %s: %w", queue, err)
			}
			if ok {
				raw, err = toEnvelope(&d, "")
				return err
			}
			if time.Now().After(deadline) {
				return nil
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	})
	return raw, b.fail("get", err)
}

// DeleteQueue deletes a reply queue.
func (b *Broker) DeleteQueue(ctx context.Context, queue string) error {
	s, err := b.session(ctx)
	if err != nil {
		return b.fail("del", err)
	}
	return b.fail("del", s.withTemp(func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(queue, false, false, false)
		return err
	}))
}
