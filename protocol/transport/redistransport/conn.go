package redistransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Sentinel errors. Errors returned by this package wrap one of these (or a
// protocol error) so callers can decide to retry.
var (
	// ErrClosed: the Broker or ResultBackend was closed.
	ErrClosed = errors.New("redis: closed")
	// ErrConn: the Redis server could not be reached or the connection
	// broke; retrying later may succeed.
	ErrConn = errors.New("redis: connection error")
	// ErrNoQueues: Fetch was called without queues.
	ErrNoQueues = errors.New("redis: no queues to consume")
	// ErrUnexpected: Redis answered something this package did not expect.
	ErrUnexpected = errors.New("redis: unexpected reply")
)

// client is a connection factory plus a pool for short commands.
type client struct {
	ep   Endpoint
	cfg  Config
	pool *redis.Pool
	sent *resolver // sentinel:// endpoints only

	mu     sync.Mutex
	closed bool
}

func newClient(ep Endpoint, cfg Config) (*client, error) {
	if len(ep.Sentinels) > 0 && ep.MasterName == "" {
		ep.MasterName = cfg.MasterName
	}
	c := &client{ep: ep, cfg: cfg}
	if ep.TLS { // fail early on unreadable certificate files
		if _, err := ep.tlsConfig(cfg.TLSConfig); err != nil {
			return nil, err
		}
	}
	maxIdle := cfg.MaxIdle
	if maxIdle <= 0 {
		maxIdle = 16
	}
	c.pool = &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) { return c.dial(ctx) },
		MaxIdle:     maxIdle,
		MaxActive:   cfg.MaxActive,
		Wait:        cfg.MaxActive > 0,
		IdleTimeout: 5 * time.Minute,
		TestOnBorrow: func(rc redis.Conn, t time.Time) error {
			if err := rc.Err(); err != nil { // closed by a master switch
				return err
			}
			if time.Since(t) < 30*time.Second {
				return nil
			}
			_, err := rc.Do("PING")
			return err
		},
	}
	if len(ep.Sentinels) > 0 {
		r, err := newResolver(c.ep, cfg)
		if err != nil {
			return nil, err
		}
		r.start()
		c.sent = r
	}
	return c, nil
}

// dial opens one new connection (AUTH and SELECT included); extra options
// come last.
func (c *client) dial(ctx context.Context, extra ...redis.DialOption) (redis.Conn, error) {
	opts := []redis.DialOption{
		redis.DialDatabase(c.ep.DB),
		redis.DialConnectTimeout(c.cfg.dialTimeout()),
		redis.DialWriteTimeout(c.cfg.writeTimeout()),
	}
	if c.cfg.ReadTimeout >= 0 { // negative: no read deadline (Dial)
		opts = append(opts, redis.DialReadTimeout(c.cfg.readTimeout()))
	}
	if c.ep.Password != "" {
		opts = append(opts, redis.DialPassword(c.ep.Password))
		if c.ep.Username != "" {
			opts = append(opts, redis.DialUsername(c.ep.Username))
		}
	}
	if c.cfg.ClientName != "" {
		opts = append(opts, redis.DialClientName(c.cfg.ClientName))
	}
	if c.ep.TLS {
		tc, err := c.ep.tlsConfig(c.cfg.TLSConfig)
		if err != nil {
			return nil, err
		}
		opts = append(opts, redis.DialUseTLS(true), redis.DialTLSConfig(tc), redis.DialTLSSkipVerify(tc.InsecureSkipVerify))
	}
	opts = append(opts, extra...)
	if c.sent != nil {
		return c.dialMaster(ctx, opts)
	}
	rc, err := redis.DialContext(ctx, c.ep.Network, c.ep.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %s: %w", ErrConn, c.ep, err)
	}
	return rc, nil
}

// get borrows a pooled connection.
func (c *client) get(ctx context.Context) (redis.Conn, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rc, err := c.pool.GetContext(ctx)
	if err != nil {
		return nil, wrapErr("get connection", err)
	}
	return rc, nil
}

// do runs one command on a pooled connection.
func (c *client) do(ctx context.Context, cmd string, args ...any) (any, error) {
	rc, err := c.get(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r, err := rc.Do(cmd, args...)
	if err != nil {
		return nil, wrapErr(cmd, err)
	}
	return r, nil
}

func (c *client) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.sent != nil {
		defer c.sent.close()
	}
	return c.pool.Close()
}

func (c *client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// wrapErr wraps err with ErrConn when it is a network-level failure.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrConn) || errors.Is(err, ErrClosed) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	var re redis.Error
	if errors.As(err, &re) {
		return fmt.Errorf("redis: %s: %w", op, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, redis.ErrPoolExhausted) || isIOErr(err) {
		return fmt.Errorf("redis: %s: %w: %w", op, ErrConn, err)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

func isIOErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dedicated is one long-lived connection (BRPOP) that is re-dialled, with
// exponential backoff, after it broke.
type dedicated struct {
	c     *client
	rc    redis.Conn
	fails int
	last  time.Time
}

// conn returns the live connection, dialling (after a backoff wait when the
// previous attempts failed) if needed. Callers serialise access.
func (d *dedicated) conn(ctx context.Context) (redis.Conn, error) {
	if d.c.isClosed() {
		return nil, ErrClosed
	}
	if d.rc != nil && d.rc.Err() == nil {
		return d.rc, nil
	}
	if d.rc != nil {
		d.rc.Close()
		d.rc = nil
	}
	if d.fails > 0 {
		if err := d.c.backoffWait(ctx, backoff(d.fails)-time.Since(d.last)); err != nil {
			return nil, err
		}
	}
	rc, err := d.c.dial(ctx)
	if err != nil {
		d.fails++
		d.last = time.Now()
		return nil, err
	}
	d.fails = 0
	d.rc = rc
	return rc, nil
}

// broken records that the current connection failed.
func (d *dedicated) broken() {
	if d.rc != nil {
		d.rc.Close()
		d.rc = nil
	}
	d.fails++
	d.last = time.Now()
}

func (d *dedicated) close() {
	if d.rc != nil {
		d.rc.Close()
		d.rc = nil
	}
}

// backoff is the wait before reconnect attempt n (1-based): 100 ms
// doubling up to 5 s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// backoffWait sleeps d before a reconnect attempt; on a sentinel://
// endpoint a master switch ends the wait at once (the new master is up).
func (c *client) backoffWait(ctx context.Context, d time.Duration) error {
	if c.sent == nil {
		return sleepCtx(ctx, d)
	}
	return waitCtx(ctx, d, c.sent.nextSwitch())
}

// sleepCtx sleeps d, or until ctx is done (its error).
func sleepCtx(ctx context.Context, d time.Duration) error { return waitCtx(ctx, d, nil) }

// waitCtx sleeps d, until wake is closed (nil: never), or until ctx is
// done (its error). A d <= 0 does not wait.
func waitCtx(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	case <-wake:
	}
	return nil
}
