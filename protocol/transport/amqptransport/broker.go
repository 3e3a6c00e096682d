package amqptransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport"
)

// Broker is the AMQP transport of one worker process. It satisfies
// worker.Broker, control.Mailbox, events.Publisher and metrics.Broker.
//
// Fetch reads from basic.consume deliveries pushed by RabbitMQ (bounded by
// basic.qos); Ack is basic.ack, Requeue and Restore are
// basic.reject(requeue=true). There is no visibility timeout: a dead
// connection's unacked deliveries go back to their queues by RabbitMQ
// itself, so RestoreVisible and Touch do nothing.
type Broker struct {
	ep    Endpoint
	cfg   Config
	log   *slog.Logger
	names protocol.Names

	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
	supDone chan struct{}

	mu      sync.Mutex
	sess    *session
	ready   chan struct{} // closed when sess is set
	lastErr error
	bound   map[string]bool // task queues declared (Bind), re-declared on reconnect
	want    []string        // task queues consumed
	held    map[string]*held
	etaHeld int
	pidbox  *pidboxState

	inbox chan incoming
	now   func() time.Time

	mailboxErr transport.ErrorHook
}

// held is one delivery the runtime holds (not yet acked or rejected).
type held struct {
	gen   uint64
	tag   uint64
	queue string
	eta   bool // counted in etaHeld (raises the prefetch)
}

type incoming struct {
	gen   uint64
	queue string
	tag   string
	d     amqp.Delivery
}

// NewBroker returns a Broker for an amqp://, pyamqp:// or amqps:// URL. It
// does not connect: the first operation (or Ping) starts the connection
// supervisor.
func NewBroker(url string, cfg Config) (*Broker, error) {
	ep, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Broker{ep: ep, cfg: cfg, log: cfg.logger(), names: protocol.DefaultNames(0),
		ctx: ctx, cancel: cancel, supDone: make(chan struct{}), ready: make(chan struct{}),
		bound: map[string]bool{}, held: map[string]*held{}, inbox: make(chan incoming, 1024),
		now: time.Now}, nil
}

func (b *Broker) start() { b.once.Do(func() { go b.supervise() }) }

// Names is the channel naming the runtime uses with this broker (kombu's
// defaults; the fanout "channels" are parsed back into exchange and
// routing key by PublishFanout).
func (b *Broker) Names() protocol.Names { return b.names }

// Endpoint is the parsed broker URL.
func (b *Broker) Endpoint() Endpoint { return b.ep }

// Close closes the connection: RabbitMQ returns every delivery still
// unacknowledged to its queue.
func (b *Broker) Close() error {
	b.once.Do(func() { close(b.supDone) }) // never started
	b.cancel()
	<-b.supDone
	return nil
}

// Ping waits for a live connection.
func (b *Broker) Ping(ctx context.Context) error {
	_, err := b.session(ctx)
	return err
}

// setup prepares a new session: qos, the task queues bound so far, the
// consumers, the pidbox consumer.
func (b *Broker) setup(s *session) error {
	b.mu.Lock()
	bound := slices.Sorted(maps.Keys(b.bound))
	want := slices.Clone(b.want)
	pb := b.pidbox
	b.mu.Unlock()
	if err := b.applyQos(s); err != nil {
		return err
	}
	for _, q := range bound {
		if err := b.declareTaskQueue(s, q); err != nil {
			return err
		}
	}
	for _, q := range want {
		if err := b.consume(s, q); err != nil {
			return err
		}
	}
	if pb != nil {
		if err := b.startPidbox(s, pb); err != nil {
			return err
		}
	}
	return nil
}

// prefetch is the qos to apply: base + held ETA messages (0 = unlimited).
func (b *Broker) prefetch() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.Prefetch <= 0 {
		return 0
	}
	return b.cfg.Prefetch + b.etaHeld
}

// applyQos sends basic.qos(prefetch, global=true) when it changed.
func (b *Broker) applyQos(s *session) error {
	n := b.prefetch()
	s.chMu.Lock()
	defer s.chMu.Unlock()
	s.mu.Lock()
	same := s.qos == n
	s.mu.Unlock()
	if same {
		return nil
	}
	if err := s.ch.Qos(n, 0, true); err != nil {
		return fmt.Errorf("amqp: basic.qos: %w", err)
	}
	s.mu.Lock()
	s.qos = n
	s.mu.Unlock()
	return nil
}

// queueArgs are the arguments Celery declares a task queue with.
func (b *Broker) queueArgs() amqp.Table {
	args := amqp.Table{}
	if b.cfg.MaxPriority > 0 {
		args["x-max-priority"] = int32(b.cfg.MaxPriority)
	}
	if b.cfg.QueueType == "quorum" {
		args["x-queue-type"] = "quorum"
	}
	if len(args) == 0 {
		return nil
	}
	return args
}

// declareTaskQueue declares queue as Celery does: a durable direct
// exchange named like the queue, the durable queue (x-max-priority /
// x-queue-type only when configured), bound with routing key = queue. If
// the server refuses (PRECONDITION_FAILED: the queue exists with other
// arguments) the queue is declared passively and used as it is.
func (b *Broker) declareTaskQueue(s *session, q string) error {
	if s.isDeclared("q:" + q) {
		return nil
	}
	err := s.withTemp(func(ch *amqp.Channel) error {
		if b.cfg.PassiveDeclare {
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			return err
		}
		if err := ch.ExchangeDeclare(q, "direct", true, false, false, false, nil); err != nil {
			return err
		}
		if _, err := ch.QueueDeclare(q, true, false, false, false, b.queueArgs()); err != nil {
			return err
		}
		return ch.QueueBind(q, q, q, false, nil)
	})
	if err != nil && !b.cfg.PassiveDeclare && (isCode(err, amqp.PreconditionFailed) || isCode(err, amqp.NotAllowed)) {
		b.log.Warn("amqp: queue exists with other arguments; using it as declared (passive)",
			"queue", q, "err", err, "arguments", fmt.Sprint(b.queueArgs()))
		err = s.withTemp(func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("amqp: declare queue %s: %w", q, err)
	}
	s.setDeclared("q:" + q)
	return nil
}

// Bind declares a consumed queue (exchange, queue, binding) as Celery
// does; it is declared again after every reconnect.
func (b *Broker) Bind(ctx context.Context, queue string) error {
	s, err := b.session(ctx)
	if err != nil {
		return err
	}
	if err := b.declareTaskQueue(s, queue); err != nil {
		return err
	}
	b.mu.Lock()
	b.bound[queue] = true
	b.mu.Unlock()
	return nil
}

// consume starts basic.consume on q and forwards its deliveries.
func (b *Broker) consume(s *session, q string) error {
	s.mu.Lock()
	_, ok := s.consumers[q]
	s.mu.Unlock()
	if ok {
		return nil
	}
	if err := b.declareTaskQueue(s, q); err != nil {
		return err
	}
	tag := fmt.Sprintf("%s.%s.%d", b.cfg.NodeName, q, s.gen)
	s.chMu.Lock()
	ds, err := s.ch.Consume(q, tag, false, false, false, false, nil)
	s.chMu.Unlock()
	if err != nil {
		return fmt.Errorf("amqp: basic.consume %s: %w", q, err)
	}
	s.mu.Lock()
	s.consumers[q] = tag
	s.mu.Unlock()
	go b.forward(s, q, ds)
	return nil
}

// forward hands the deliveries of one consumer to Fetch, parking far-ETA
// messages (eta.go) and counting held ETA messages in the prefetch.
func (b *Broker) forward(s *session, q string, ds <-chan amqp.Delivery) {
	for d := range ds {
		in := incoming{gen: s.gen, queue: q, tag: strconv.FormatUint(s.gen, 10) + "." + strconv.FormatUint(d.DeliveryTag, 10), d: d}
		h := &held{gen: s.gen, tag: d.DeliveryTag, queue: q}
		if eta := deliveryETA(&d); !eta.IsZero() && eta.After(b.now()) {
			if b.parkable(eta) && b.park(s, q, &d) {
				continue
			}
			h.eta = true
		}
		b.mu.Lock()
		if !s.alive() {
			b.mu.Unlock()
			continue // stale: RabbitMQ requeued it with its channel
		}
		b.held[in.tag] = h
		if h.eta {
			b.etaHeld++
		}
		b.mu.Unlock()
		if h.eta {
			if err := b.applyQos(s); err != nil {
				s.kill(err)
			}
		}
		select {
		case b.inbox <- in:
		case <-s.done:
			return
		case <-b.ctx.Done():
			return
		}
	}
}

// syncConsumers makes the consumed set equal queues.
func (b *Broker) syncConsumers(ctx context.Context, queues []string) error {
	b.mu.Lock()
	same := len(b.want) == len(queues)
	for _, q := range queues {
		same = same && slices.Contains(b.want, q)
	}
	if same {
		s := b.sess
		b.mu.Unlock()
		if s != nil && s.alive() {
			return nil
		}
	} else {
		b.want = slices.Clone(queues)
		b.mu.Unlock()
	}
	s, err := b.session(ctx)
	if err != nil {
		return err
	}
	for _, q := range queues {
		if err := b.consume(s, q); err != nil {
			return err
		}
	}
	s.mu.Lock()
	var drop []string
	for q, tag := range s.consumers {
		if !slices.Contains(queues, q) {
			drop = append(drop, tag)
			delete(s.consumers, q)
		}
	}
	s.mu.Unlock()
	for _, tag := range drop {
		s.chMu.Lock()
		err := s.ch.Cancel(tag, false)
		s.chMu.Unlock()
		if err != nil {
			return fmt.Errorf("amqp: basic.cancel: %w", err)
		}
	}
	return nil
}

// Fetch waits up to timeout for one delivery of queues; (nil, nil) on
// timeout. The first call starts the consumers; a changed queue set
// (add_consumer, cancel_consumer) starts and cancels consumers.
func (b *Broker) Fetch(ctx context.Context, queues []string, timeout time.Duration) (*protocol.Delivery, error) {
	ds, err := b.FetchMany(ctx, queues, 1, timeout)
	if len(ds) == 0 {
		return nil, err
	}
	return ds[0], err
}

// FetchMany is Fetch for up to max deliveries already received.
func (b *Broker) FetchMany(ctx context.Context, queues []string, n int, timeout time.Duration) ([]*protocol.Delivery, error) {
	if b.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if timeout == 0 {
		timeout = time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, max(timeout, 0))
	defer cancel()
	if err := b.syncConsumers(sctx, queues); err != nil {
		if sctx.Err() != nil && ctx.Err() == nil {
			return nil, nil // not connected yet: a timeout
		}
		return nil, err
	}
	var out []*protocol.Delivery
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	for len(out) < max(n, 1) {
		var in incoming
		if len(out) > 0 || timeout < 0 {
			select {
			case in = <-b.inbox:
			default:
				return out, nil
			}
		} else {
			select {
			case in = <-b.inbox:
			case <-timer:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-b.ctx.Done():
				return nil, ErrClosed
			}
		}
		b.mu.Lock()
		_, live := b.held[in.tag]
		b.mu.Unlock()
		if !live {
			continue // its channel died: RabbitMQ requeued it
		}
		out = append(out, b.delivery(in))
	}
	return out, nil
}

func (b *Broker) delivery(in incoming) *protocol.Delivery {
	raw, err := toEnvelope(&in.d, in.tag)
	d := &protocol.Delivery{Queue: in.queue, Tag: in.tag, Raw: raw}
	if err != nil {
		d.DecodeErr = err
		return d
	}
	d.Envelope, d.DecodeErr = protocol.DecodeEnvelope(raw)
	return d
}

// take removes tag from the held set and returns its session, or nil
// when the delivery is no longer held on the live session (already
// settled, or its channel died and RabbitMQ requeued it): such a tag is
// never acknowledged.
func (b *Broker) take(tag string) (*session, *held) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.held[tag]
	if !ok {
		return nil, nil
	}
	delete(b.held, tag)
	if h.eta {
		b.etaHeld--
	}
	if b.sess == nil || b.sess.gen != h.gen || !b.sess.alive() {
		return nil, nil
	}
	return b.sess, h
}

// ErrStale reports a delivery whose channel died before it was settled:
// RabbitMQ has already put it back in its queue.
var ErrStale = errors.New("amqp: delivery's channel is gone; RabbitMQ requeued it")

func (b *Broker) settle(d *protocol.Delivery, fn func(s *session, tag uint64) error) error {
	if d == nil || d.Tag == "" {
		return nil
	}
	s, h := b.take(d.Tag)
	if s == nil {
		b.log.Debug("amqp: not settling a delivery of a dead channel (requeued by RabbitMQ)", "delivery_tag", d.Tag)
		return nil
	}
	err := fn(s, h.tag)
	if h.eta {
		if qerr := b.applyQos(s); qerr != nil && err == nil {
			s.kill(qerr)
		}
	}
	return err
}

// Ack is basic.ack (also used for reject-without-requeue, which Celery
// does with basic.reject(requeue=False): the message is dropped either
// way).
func (b *Broker) Ack(_ context.Context, d *protocol.Delivery) error {
	return b.settle(d, func(s *session, tag uint64) error { return s.ch.Ack(tag, false) })
}

// Requeue is basic.reject(requeue=true).
func (b *Broker) Requeue(_ context.Context, d *protocol.Delivery) error {
	return b.settle(d, func(s *session, tag uint64) error { return s.ch.Reject(tag, true) })
}

// Restore is basic.reject(requeue=true) too: RabbitMQ puts the message
// back at (or near) its original position.
func (b *Broker) Restore(ctx context.Context, d *protocol.Delivery) error { return b.Requeue(ctx, d) }

// RestoreVisible does nothing: RabbitMQ returns the unacked deliveries of
// a dead connection itself.
func (b *Broker) RestoreVisible(context.Context, time.Duration) (int, error) { return 0, nil }

// Touch does nothing (no visibility timeout on AMQP).
func (b *Broker) Touch(context.Context, []string) error { return nil }

// Publish declares queue (as Bind) and publishes envelope to the exchange
// named like it with routing key = queue, persistent, at priority, waiting
// for the publisher confirm. A publish interrupted by a connection loss is
// retried on the next connection (at-least-once).
func (b *Broker) Publish(ctx context.Context, queue string, priority int, envelope []byte) error {
	p, err := toPublishing(envelope, amqp.Persistent)
	if err != nil {
		return err
	}
	p.Priority = uint8(min(max(priority, 0), 255))
	for attempt := 1; ; attempt++ {
		s, err := b.session(ctx)
		if err != nil {
			return err
		}
		err = b.declareTaskQueue(s, queue)
		if err == nil {
			err = b.publishConfirmed(ctx, s, queue, queue, p)
		}
		if err == nil || attempt == 3 || ctx.Err() != nil || s.alive() {
			return err
		}
	}
}

// errNack is a publish the broker refused.
var errNack = errors.New("amqp: publish not confirmed (nack)")

func (b *Broker) publishConfirmed(ctx context.Context, s *session, exchange, key string, p amqp.Publishing) error {
	s.pubMu.Lock()
	dc, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	s.pubMu.Unlock()
	if err != nil {
		return fmt.Errorf("amqp: publish to %q/%q: %w", exchange, key, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-wctx.Done():
		}
	}()
	ok, err := dc.WaitContext(wctx)
	if err != nil {
		if !s.alive() {
			return fmt.Errorf("amqp: publish to %q/%q: connection lost before the confirm: %w", exchange, key, s.err)
		}
		return err
	}
	if !ok {
		return errNack
	}
	return nil
}

// publishNoWait publishes without waiting for the confirm (events,
// control replies: transient, best effort as in kombu).
func (b *Broker) publishNoWait(ctx context.Context, s *session, exchange, key string, p amqp.Publishing) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	_, err := s.pub.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		return fmt.Errorf("amqp: publish to %q/%q: %w", exchange, key, err)
	}
	return nil
}

// QueueLengths returns the ready-message count of queue (queue.declare
// passive) under priority step 0: RabbitMQ has no sub-queues.
func (b *Broker) QueueLengths(ctx context.Context, queue string) (map[int]int, error) {
	n, err := b.QueueLength(ctx, queue)
	if err != nil {
		return nil, err
	}
	return map[int]int{0: n}, nil
}

// QueueLength is the number of ready messages of queue.
func (b *Broker) QueueLength(ctx context.Context, queue string) (int, error) {
	s, err := b.session(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.withTemp(func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		n = q.Messages
		return err
	})
	if isCode(err, amqp.NotFound) {
		return 0, nil
	}
	return n, err
}

// UnackedCount is the number of deliveries this process holds.
func (b *Broker) UnackedCount(context.Context) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held), nil
}

// Purge deletes the ready messages of queue (queue.purge) and returns how
// many there were.
func (b *Broker) Purge(ctx context.Context, queue string) (int, error) {
	s, err := b.session(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	err = s.withTemp(func(ch *amqp.Channel) error {
		n, err = ch.QueuePurge(queue, false)
		return err
	})
	return n, err
}
