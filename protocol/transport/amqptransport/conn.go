package amqptransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrClosed is returned once Close was called.
var ErrClosed = errors.New("amqp: broker closed")

// session is one connection and its channels. Every channel failure ends
// the whole session (gen); the supervisor then dials a new one, declares
// again and consumes again. Delivery tags are per channel, so a tag is
// only ever acknowledged on the session (gen) that delivered it.
type session struct {
	gen  uint64
	conn *amqp.Connection

	// ch consumes task queues and carries acks and rejects; chMu
	// serialises its synchronous methods (Qos, Consume, Cancel).
	ch   *amqp.Channel
	chMu sync.Mutex
	// pub is in confirm mode: every publish of the runtime.
	pub   *amqp.Channel
	pubMu sync.Mutex
	// ctl consumes the pidbox queue and polls reply queues.
	ctl   *amqp.Channel
	ctlMu sync.Mutex

	done      chan struct{} // closed when the session is dead
	closeOnce sync.Once
	err       error

	mu        sync.Mutex
	declared  map[string]bool   // exchanges and queues declared on this session
	consumers map[string]string // queue -> consumer tag
	qos       int               // last prefetch sent (-1: none)
}

func (s *session) kill(err error) {
	s.closeOnce.Do(func() {
		s.err = err
		close(s.done)
		_ = s.conn.Close()
	})
}

// killOnClose kills the session when c (a NotifyClose channel of its
// connection or a channel) reports a close, amqp.ErrClosed for a clean
// one; it stops watching once the session is done.
func (s *session) killOnClose(c <-chan *amqp.Error) {
	go func() {
		select {
		case e := <-c:
			if e != nil {
				s.kill(e)
			} else {
				s.kill(amqp.ErrClosed)
			}
		case <-s.done:
		}
	}()
}

// isDeclared reports whether the exchange or queue key ("x:", "q:" or
// "p:" and its name) was declared on this session.
func (s *session) isDeclared(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.declared[key]
}

// setDeclared records that key was declared on this session.
func (s *session) setDeclared(key string) {
	s.mu.Lock()
	s.declared[key] = true
	s.mu.Unlock()
}

func (s *session) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// dial opens a session: the connection, its three channels, and close
// watchers that kill the session on any failure.
func (b *Broker) dial(ctx context.Context, gen uint64) (*session, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(b.connName())
	timeout := b.cfg.connectTimeout()
	acfg := amqp.Config{
		Heartbeat:       b.cfg.heartbeat(),
		Properties:      props,
		TLSClientConfig: b.cfg.TLSConfig,
		Locale:          "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			dctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return d.DialContext(dctx, network, addr)
		},
	}
	conn, err := amqp.DialConfig(b.ep.URI.String(), acfg)
	if err != nil {
		return nil, fmt.Errorf("amqp: dial %s: %w", b.ep, err)
	}
	s := &session{gen: gen, conn: conn, done: make(chan struct{}),
		declared: map[string]bool{}, consumers: map[string]string{}, qos: -1}
	open := func() (*amqp.Channel, error) {
		ch, err := conn.Channel()
		if err != nil {
			return nil, err
		}
		s.killOnClose(ch.NotifyClose(make(chan *amqp.Error, 1)))
		return ch, nil
	}
	s.killOnClose(conn.NotifyClose(make(chan *amqp.Error, 1)))
	if s.ch, err = open(); err == nil {
		if s.pub, err = open(); err == nil {
			if err = s.pub.Confirm(false); err == nil {
				s.ctl, err = open()
			}
		}
	}
	if err != nil {
		s.kill(err)
		return nil, fmt.Errorf("amqp: open channel: %w", err)
	}
	return s, nil
}

func (b *Broker) connName() string {
	if b.cfg.NodeName != "" {
		return "omics-worker " + b.cfg.NodeName
	}
	return "omics-worker"
}

// supervise keeps a session up until Close: dial with backoff, set up
// (qos, declarations, consumers, pidbox), wait for its death, repeat.
func (b *Broker) supervise() {
	defer close(b.supDone)
	fails := 0
	var gen uint64
	for {
		if b.ctx.Err() != nil {
			return
		}
		gen++
		s, err := b.dial(b.ctx, gen)
		if err == nil {
			err = b.setup(s)
			if err != nil {
				s.kill(err)
			}
		}
		if err != nil {
			fails++
			b.setErr(err)
			if fails == 1 || fails%10 == 0 {
				b.log.Warn("amqp: connection failed; retrying", "err", err, "attempt", fails, "url", b.ep.String())
			}
			select {
			case <-time.After(backoff(fails)):
				continue
			case <-b.ctx.Done():
				return
			}
		}
		if fails > 0 || gen > 1 {
			b.log.Info("amqp: connected", "url", b.ep.String(), "generation", gen)
		}
		fails = 0
		b.setSession(s)
		select {
		case <-s.done:
			b.dropSession(s)
			if b.ctx.Err() == nil {
				b.log.Warn("amqp: connection lost; reconnecting (unacked deliveries return to their queues)",
					"err", s.err, "generation", gen)
			}
		case <-b.ctx.Done():
			b.dropSession(s)
			s.kill(ErrClosed)
			return
		}
	}
}

func (b *Broker) setErr(err error) {
	b.mu.Lock()
	b.lastErr = err
	b.mu.Unlock()
}

func (b *Broker) setSession(s *session) {
	b.mu.Lock()
	b.sess = s
	b.lastErr = nil
	close(b.ready)
	b.mu.Unlock()
}

// dropSession forgets s and every delivery it made (RabbitMQ requeues
// them when the channel dies).
func (b *Broker) dropSession(s *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess == s {
		b.sess = nil
		b.ready = make(chan struct{})
	}
	for tag, h := range b.held {
		if h.gen == s.gen {
			delete(b.held, tag)
			if h.eta {
				b.etaHeld--
			}
		}
	}
}

// session waits for a live session (or ctx, or Close).
func (b *Broker) session(ctx context.Context) (*session, error) {
	b.start()
	for {
		b.mu.Lock()
		s, ready, last := b.sess, b.ready, b.lastErr
		b.mu.Unlock()
		if s != nil && s.alive() {
			return s, nil
		}
		if b.ctx.Err() != nil {
			return nil, ErrClosed
		}
		select {
		case <-ready:
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("%w (last connection error: %w)", ctx.Err(), last)
			}
			return nil, ctx.Err()
		case <-b.ctx.Done():
			return nil, ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// withTemp runs fn on a short-lived channel of s: a declaration that
// fails (PRECONDITION_FAILED, NOT_FOUND) closes only that channel.
func (s *session) withTemp(fn func(ch *amqp.Channel) error) error {
	ch, err := s.conn.Channel()
	if err != nil {
		return err
	}
	err = fn(ch)
	_ = ch.Close()
	return err
}

// isCode reports whether err is an AMQP error with the given reply code.
func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}
