package redistransport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Redis Sentinel (kombu's sentinel:// transport, celery's sentinel://
// result backend).
//
// Every connection of a client on a sentinel:// endpoint is dialled
// through the resolver: the master address is asked of the sentinels
// (SENTINEL get-master-addr-by-name, trying each in turn), the new
// connection checks with ROLE that it reached a master, and it is
// registered so that it can be closed when the master changes. The
// resolver learns of a failover three ways:
//
//   - a watcher goroutine subscribed to +switch-master on one sentinel
//     (re-subscribing to the next one when it breaks) switches at once and
//     closes every connection to the old master: the command pool, the
//     BRPOP connection, the pub/sub subscribers (pidbox, events) and the
//     group-commit writer all re-dial to the new master;
//   - a READONLY (or UNBLOCKED) reply from a demoted master closes the
//     connection and forgets the address;
//   - a dial failure forgets the address, so the next dial asks the
//     sentinels again.
//
// kombu's state (queues, unacked, unacked_index, bindings) is ordinary
// keys that Redis replicates, so it continues on the new master; what the
// old master acknowledged but had not replicated yet is lost, which is
// Redis' asynchronous replication limit, the same for a Python worker.

// ErrNoMaster is returned when no sentinel knows a master for the name.
var ErrNoMaster = errors.New("redis sentinel: no master found")

// defaultSentinelPort is kombu's SentinelTransport.default_port.
const defaultSentinelPort = "26379"

// resolver finds and follows the master of one sentinel-monitored group.
type resolver struct {
	name    string
	cfg     Config
	stopped chan struct{}
	cancel  context.CancelFunc

	mu        sync.Mutex
	sentinels []string // host:port, the last one that answered first
	master    string   // current master address; "" = ask the sentinels
	conns     map[*sentinelConn]struct{}
	switches  int
	switched  chan struct{} // closed (and replaced) at each switch
}

func newResolver(ep Endpoint, cfg Config) (*resolver, error) {
	if ep.MasterName == "" {
		return nil, fmt.Errorf("%w: sentinel:// needs the master_name transport option", ErrBadURL)
	}
	return &resolver{
		name:      ep.MasterName,
		cfg:       cfg,
		sentinels: append([]string(nil), ep.Sentinels...),
		conns:     map[*sentinelConn]struct{}{},
		switched:  make(chan struct{}),
	}, nil
}

// nextSwitch returns a channel closed at the next master switch.
func (s *resolver) nextSwitch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switched
}

// start runs the +switch-master watcher until close.
func (s *resolver) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.stopped = make(chan struct{})
	go s.watch(ctx)
}

func (s *resolver) close() {
	if s.cancel != nil {
		s.cancel()
		<-s.stopped
	}
}

// dialSentinel opens a connection to one sentinel (sentinel_kwargs
// credentials, the client's timeouts).
func (s *resolver) dialSentinel(ctx context.Context, addr string, readTimeout time.Duration) (redis.Conn, error) {
	opts := []redis.DialOption{
		redis.DialConnectTimeout(s.cfg.dialTimeout()),
		redis.DialWriteTimeout(s.cfg.writeTimeout()),
		redis.DialReadTimeout(readTimeout),
	}
	if s.cfg.SentinelPassword != "" {
		opts = append(opts, redis.DialPassword(s.cfg.SentinelPassword))
		if s.cfg.SentinelUsername != "" {
			opts = append(opts, redis.DialUsername(s.cfg.SentinelUsername))
		}
	}
	rc, err := redis.DialContext(ctx, "tcp", addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: dial sentinel %s: %w", ErrConn, addr, err)
	}
	return rc, nil
}

// currentMaster returns the cached master address or asks the sentinels.
func (s *resolver) currentMaster(ctx context.Context) (string, error) {
	s.mu.Lock()
	m := s.master
	s.mu.Unlock()
	if m != "" {
		return m, nil
	}
	m, err := s.discover(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.master == "" {
		s.master = m
	}
	m = s.master
	s.mu.Unlock()
	return m, nil
}

// discover asks each sentinel in turn for the master address; the first
// that answers moves to the front of the list (as redis-py does).
func (s *resolver) discover(ctx context.Context) (string, error) {
	s.mu.Lock()
	list := append([]string(nil), s.sentinels...)
	s.mu.Unlock()
	var errs []error
	for i, a := range list {
		addr, err := s.askSentinel(ctx, a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 {
			s.mu.Lock()
			s.sentinels[0], s.sentinels[i] = s.sentinels[i], s.sentinels[0]
			s.mu.Unlock()
		}
		return addr, nil
	}
	return "", fmt.Errorf("%w %q: %w", ErrNoMaster, s.name, errors.Join(errs...))
}

func (s *resolver) askSentinel(ctx context.Context, sentinel string) (string, error) {
	rc, err := s.dialSentinel(ctx, sentinel, s.cfg.dialTimeout())
	if err != nil {
		return "", err
	}
	defer rc.Close()
	r, err := redis.Strings(rc.Do("SENTINEL", "get-master-addr-by-name", s.name))
	switch {
	case errors.Is(err, redis.ErrNil):
		return "", fmt.Errorf("sentinel %s does not monitor %q", sentinel, s.name)
	case err != nil:
		return "", wrapErr("SENTINEL get-master-addr-by-name on "+sentinel, err)
	case len(r) != 2:
		return "", fmt.Errorf("%w: sentinel %s answered %q", ErrUnexpected, sentinel, r)
	}
	return net.JoinHostPort(r[0], r[1]), nil
}

// forget drops addr as the master (after a dial failure, a wrong ROLE or
// a READONLY reply) so that the next dial asks the sentinels.
func (s *resolver) forget(addr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == addr {
		s.master = ""
	}
}

// switchTo makes addr the master and closes every connection to another
// address; it returns how many it closed.
func (s *resolver) switchTo(addr string) int {
	s.mu.Lock()
	if s.master != addr {
		s.switches++
		close(s.switched) // wake the reconnect loops waiting a backoff
		s.switched = make(chan struct{})
	}
	s.master = addr
	var stale []*sentinelConn
	for c := range s.conns {
		if c.addr != addr {
			stale = append(stale, c)
		}
	}
	s.mu.Unlock()
	for _, c := range stale {
		c.Close()
	}
	return len(stale)
}

func (s *resolver) track(c *sentinelConn) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
}

func (s *resolver) untrack(c *sentinelConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// watch follows +switch-master on one sentinel at a time until ctx ends.
func (s *resolver) watch(ctx context.Context) {
	defer close(s.stopped)
	for fails, i := 0, 0; ctx.Err() == nil; i++ {
		s.mu.Lock()
		addr := s.sentinels[i%len(s.sentinels)]
		s.mu.Unlock()
		if err := s.watchOne(ctx, addr); err != nil && ctx.Err() == nil {
			fails++
			s.cfg.logger().Debug("redis sentinel: watch", "sentinel", addr, "err", err)
			_ = sleepCtx(ctx, backoff(fails))
			continue
		}
		fails = 0
	}
}

// watchOne subscribes to +switch-master on sentinel addr, then checks
// the current master (a switch may have happened while no sentinel was
// watched) and follows the announcements until the connection breaks.
func (s *resolver) watchOne(ctx context.Context, addr string) error {
	rc, err := s.dialSentinel(ctx, addr, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	psc := redis.PubSubConn{Conn: rc}
	if err := psc.Subscribe("+switch-master"); err != nil {
		return wrapErr("SUBSCRIBE +switch-master", err)
	}
	checked := false
	for {
		switch v := psc.ReceiveWithTimeout(time.Minute).(type) {
		case redis.Subscription:
			if !checked {
				checked = true
				s.recheck(ctx, addr)
			}
		case redis.Message:
			// "<name> <old-ip> <old-port> <new-ip> <new-port>"
			f := strings.Fields(string(v.Data))
			if len(f) == 5 && f[0] == s.name {
				to := net.JoinHostPort(f[3], f[4])
				n := s.switchTo(to)
				s.cfg.logger().Warn("redis sentinel: master switched; reconnecting",
					"master_name", s.name, "from", net.JoinHostPort(f[1], f[2]), "to", to, "closed_connections", n)
			}
		case error:
			var ne net.Error
			if errors.As(v, &ne) && ne.Timeout() {
				if err := psc.Ping(""); err != nil {
					return wrapErr("PING sentinel", err)
				}
				continue
			}
			return wrapErr("receive +switch-master", v)
		}
	}
}

// recheck compares the cached master with what sentinel addr says now.
func (s *resolver) recheck(ctx context.Context, addr string) {
	m, err := s.askSentinel(ctx, addr)
	if err != nil {
		return
	}
	s.mu.Lock()
	cur := s.master
	s.mu.Unlock()
	if cur != "" && cur != m {
		n := s.switchTo(m)
		s.cfg.logger().Warn("redis sentinel: master changed while unwatched; reconnecting",
			"master_name", s.name, "from", cur, "to", m, "closed_connections", n)
	}
}

// Switches reports how many master changes the resolver followed.
func (s *resolver) Switches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switches
}

// dialMaster dials the current master with the client's options, checks
// its ROLE and registers the connection.
func (c *client) dialMaster(ctx context.Context, opts []redis.DialOption) (redis.Conn, error) {
	addr, err := c.sent.currentMaster(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := redis.DialContext(ctx, "tcp", addr, opts...)
	if err != nil {
		c.sent.forget(addr)
		return nil, fmt.Errorf("%w: dial master %q at %s: %w", ErrConn, c.sent.name, addr, err)
	}
	role, err := redis.Values(rc.Do("ROLE"))
	if err != nil || len(role) == 0 {
		rc.Close()
		c.sent.forget(addr)
		return nil, fmt.Errorf("%w: ROLE of %s: %w", ErrConn, addr, err)
	}
	if r, _ := redis.String(role[0], nil); r != "master" {
		rc.Close()
		c.sent.forget(addr)
		return nil, fmt.Errorf("%w: %s (given by the sentinels for %q) is a %s, not a master",
			ErrConn, addr, c.sent.name, r)
	}
	sc := &sentinelConn{Conn: rc, addr: addr, r: c.sent}
	c.sent.track(sc)
	return sc, nil
}

// sentinelConn is a connection to a sentinel-given master: it unregisters
// on Close and turns READONLY/UNBLOCKED replies (the master was demoted)
// into connection errors that close it and make the next dial re-discover.
type sentinelConn struct {
	redis.Conn
	addr string
	r    *resolver
	once sync.Once
}

func (c *sentinelConn) Close() error {
	c.once.Do(func() { c.r.untrack(c) })
	return c.Conn.Close()
}

// check inspects a reply error for a demoted master.
func (c *sentinelConn) check(err error) error {
	if err == nil || !demoted(err) {
		return err
	}
	c.r.forget(c.addr)
	c.Close()
	return fmt.Errorf("%w: %s is no longer the master: %w", ErrConn, c.addr, err)
}

// demoted reports a reply that only a replica (or an instance switching
// role) gives.
func demoted(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) {
		return false
	}
	s := string(re)
	return strings.HasPrefix(s, "READONLY") || strings.HasPrefix(s, "UNBLOCKED") ||
		strings.Contains(s, "-READONLY") || strings.HasPrefix(s, "MASTERDOWN")
}

func (c *sentinelConn) Do(cmd string, args ...any) (any, error) {
	r, err := c.Conn.Do(cmd, args...)
	return r, c.check(replyErr(r, err))
}

func (c *sentinelConn) Receive() (any, error) {
	r, err := c.Conn.Receive()
	return r, c.check(replyErr(r, err))
}

func (c *sentinelConn) DoWithTimeout(d time.Duration, cmd string, args ...any) (any, error) {
	r, err := redis.DoWithTimeout(c.Conn, d, cmd, args...)
	return r, c.check(replyErr(r, err))
}

func (c *sentinelConn) ReceiveWithTimeout(d time.Duration) (any, error) {
	r, err := redis.ReceiveWithTimeout(c.Conn, d)
	return r, c.check(replyErr(r, err))
}

func (c *sentinelConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	r, err := redis.DoContext(c.Conn, ctx, cmd, args...)
	return r, c.check(replyErr(r, err))
}

func (c *sentinelConn) ReceiveContext(ctx context.Context) (any, error) {
	r, err := redis.ReceiveContext(c.Conn, ctx)
	return r, c.check(replyErr(r, err))
}

// replyErr returns err, or a READONLY error nested in an EXEC reply.
func replyErr(r any, err error) error {
	if err != nil {
		return err
	}
	if vs, ok := r.([]any); ok {
		for _, v := range vs {
			if e, ok := v.(redis.Error); ok && demoted(e) {
				return e
			}
		}
	}
	return nil
}
