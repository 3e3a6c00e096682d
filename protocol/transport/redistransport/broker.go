package redistransport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport"
)

// Broker is the kombu Redis transport for one consumer process: task queues
// with priority sub-lists, ack emulation (unacked / unacked_index /
// unacked_mutex), bindings, and fanout pub/sub. It satisfies worker.Broker.
//
// Connections are split as kombu splits them: one dedicated connection for
// the blocking BRPOP (Fetch calls are serialised on it), a pool for every
// other command, and one dedicated connection per Subscribe.
type Broker struct {
	c     *client
	names protocol.Names
	cfg   Config
	log   *slog.Logger

	fetchMu  sync.Mutex // serialises Fetch: guards blocking
	blocking dedicated
	// cycleMu guards cycle, the round-robin order (Fetch and the fetches
	// folded into result writes, which may be in flight concurrently).
	// A cycle slice is never modified in place (rotate makes a new one),
	// so a returned order stays valid after the lock is released.
	cycleMu sync.Mutex
	cycle   []string

	// now is the clock (tests may replace it).
	now func() time.Time

	// mailboxErr is the OnMailboxError hook (mailbox.go).
	mailboxErr transport.ErrorHook
}

// NewBroker returns a Broker for a redis://, rediss:// or unix:// URL. It
// does not connect: the first command dials (see Ping).
func NewBroker(url string, cfg Config) (*Broker, error) {
	ep, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	return NewBrokerEndpoint(ep, cfg)
}

// NewBrokerEndpoint is NewBroker for an already parsed endpoint.
func NewBrokerEndpoint(ep Endpoint, cfg Config) (*Broker, error) {
	c, err := newClient(ep, cfg)
	if err != nil {
		return nil, err
	}
	b := &Broker{c: c, names: cfg.Names(ep.DB), cfg: cfg, log: cfg.logger(), now: time.Now}
	b.blocking.c = c
	return b, nil
}

// Names is the key and channel naming the broker uses.
func (b *Broker) Names() protocol.Names { return b.names }

// Endpoint is the parsed broker URL.
func (b *Broker) Endpoint() Endpoint { return b.c.ep }

// Close closes every connection. Deliveries still unacked stay recorded in
// Redis (call Restore for them first on a warm shutdown).
func (b *Broker) Close() error {
	err := b.c.close()
	b.fetchMu.Lock()
	b.blocking.close()
	b.fetchMu.Unlock()
	return err
}

// Ping checks that the server answers.
func (b *Broker) Ping(ctx context.Context) error {
	_, err := b.c.do(ctx, "PING")
	return err
}

func nowScore(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 6, 64)
}

// order returns the current round-robin order of queues (kombu
// round_robin_cycle): kept across calls while the queue set is unchanged,
// reset to the given order when it changes.
func (b *Broker) order(queues []string) []string {
	b.cycleMu.Lock()
	defer b.cycleMu.Unlock()
	if len(b.cycle) != len(queues) || !sameSet(b.cycle, queues) {
		b.cycle = slices.Clone(queues)
	}
	return b.cycle
}

// rotate moves q to the end of the cycle (kombu round_robin_cycle.rotate).
func (b *Broker) rotate(q string) {
	b.cycleMu.Lock()
	defer b.cycleMu.Unlock()
	if i := slices.Index(b.cycle, q); i >= 0 {
		b.cycle = append(append(b.cycle[:i:i], b.cycle[i+1:]...), q)
	}
}

func sameSet(a, b []string) bool {
	for _, x := range b {
		if !slices.Contains(a, x) {
			return false
		}
	}
	return true
}

// Fetch waits up to timeout for one message from queues, in kombu priority
// order with round-robin rotation, and records it as unacked before
// returning it. It returns (nil, nil) on timeout. A zero timeout means
// Config.PollTimeout (1 s); a negative one means do not block.
//
// First one script (EVALSHA) pops and records atomically without blocking;
// only when every list is empty does Fetch block in BRPOP on its dedicated
// connection and then record with a second script. A BRPOP in flight is
// never abandoned (ctx is checked around it, not during it), so a popped
// message is always returned or pushed back.
func (b *Broker) Fetch(ctx context.Context, queues []string, timeout time.Duration) (*protocol.Delivery, error) {
	ds, err := b.FetchMany(ctx, queues, 1, timeout)
	if len(ds) == 0 {
		return nil, err
	}
	return ds[0], err
}

// FetchMany is Fetch for up to max messages: one script pops and records as
// many as are available (up to max) in one round trip; if none is
// available it blocks like Fetch and returns at most one.
func (b *Broker) FetchMany(ctx context.Context, queues []string, max int, timeout time.Duration) ([]*protocol.Delivery, error) {
	if len(queues) == 0 {
		return nil, ErrNoQueues
	}
	if max < 1 {
		max = 1
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.c.isClosed() {
		return nil, ErrClosed
	}
	b.fetchMu.Lock()
	defer b.fetchMu.Unlock()
	order := b.order(queues)
	ds, err := b.popNow(ctx, order, max)
	if err != nil || len(ds) > 0 || timeout < 0 {
		return ds, err
	}
	if timeout == 0 {
		timeout = b.cfg.pollTimeout()
	}
	d, err := b.popBlocking(ctx, b.order(queues), timeout)
	if d == nil {
		return nil, err
	}
	return []*protocol.Delivery{d}, err
}

// popNow runs fetchScript. Caller holds fetchMu.
func (b *Broker) popNow(ctx context.Context, order []string, max int) ([]*protocol.Delivery, error) {
	args := b.fetchArgs(order, max)
	rc, err := b.c.get(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Deliberately no ctx on the call itself: a script whose reply we
	// abandoned would leave its messages unacked until the visibility
	// timeout. The connection read timeout bounds it.
	r, err := redis.Values(fetchScript.Do(rc, args...))
	if err != nil {
		return nil, wrapErr("fetch script", err)
	}
	return b.parseFetch(order, r)
}

// fetchArgs are the fetchScript keys and arguments (key count first) for
// popping up to max messages in the given queue order.
func (b *Broker) fetchArgs(order []string, max int) []any {
	steps := b.names.QueueKeys("")
	ns := len(steps)
	nq := len(order)
	keys := b.names.ConsumeKeys(order)
	args := make([]any, 0, 2+len(keys)+4+nq+max)
	args = append(args, 2+len(keys), b.names.UnackedKey(), b.names.UnackedIndexKey())
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, nowScore(b.now()), nq, ns, max)
	for _, q := range order {
		args = append(args, q)
	}
	for range max {
		args = append(args, pyfmt.NewUUID4().String())
	}
	return args
}

// parseFetch turns a fetchScript reply into deliveries and applies the
// rotations the script made.
func (b *Broker) parseFetch(order []string, r []any) ([]*protocol.Delivery, error) {
	nq := len(order)
	if len(r)%3 != 0 {
		return nil, fmt.Errorf("%w: fetch script returned %d values", ErrUnexpected, len(r))
	}
	ds := make([]*protocol.Delivery, 0, len(r)/3)
	for i := 0; i < len(r); i += 3 {
		qi, err1 := redis.Int(r[i], nil)
		raw, err2 := redis.Bytes(r[i+1], nil)
		tag, err3 := redis.String(r[i+2], nil)
		if err := errors.Join(err1, err2, err3); err != nil || qi < 1 || qi > nq {
			return ds, fmt.Errorf("%w: fetch script entry %d: %w", ErrUnexpected, i/3, err)
		}
		q := order[qi-1]
		ds = append(ds, newDelivery(q, tag, raw))
		b.rotate(q) // the script rotated identically; indices refer to order
	}
	return ds, nil
}

// popBlocking runs BRPOP on the dedicated connection and records the
// message. Caller holds fetchMu.
func (b *Broker) popBlocking(ctx context.Context, order []string, timeout time.Duration) (*protocol.Delivery, error) {
	rc, err := b.blocking.conn(ctx)
	if err != nil {
		return nil, err
	}
	keys := b.names.ConsumeKeys(order)
	args := make([]any, 0, len(keys)+1)
	for _, k := range keys {
		args = append(args, k)
	}
	args = append(args, strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64))
	r, err := redis.Values(redis.DoWithTimeout(rc, timeout+b.cfg.readTimeout(), "BRPOP", args...))
	if errors.Is(err, redis.ErrNil) {
		return nil, ctx.Err()
	}
	if err != nil {
		b.blocking.broken()
		return nil, wrapErr("BRPOP", err)
	}
	if len(r) != 2 {
		return nil, fmt.Errorf("%w: BRPOP returned %d values", ErrUnexpected, len(r))
	}
	key, _ := redis.String(r[0], nil)
	raw, _ := redis.Bytes(r[1], nil)
	q := b.names.QueueFromKey(key)
	b.rotate(q)
	tag, err := b.recordPopped(q, raw)
	if err != nil {
		// Not recorded: push it back to the front of the list it came
		// from rather than hold an unrecorded message.
		if _, perr := b.c.do(context.Background(), "RPUSH", key, raw); perr != nil {
			b.log.Error("redis: message popped by BRPOP could be neither recorded nor pushed back; it is lost",
				"queue", q, "record_error", err, "push_error", perr, "message", string(raw))
		}
		return nil, err
	}
	return newDelivery(q, tag, raw), nil
}

// recordPopped records a BRPOP'd message, retrying with backoff for a few
// seconds on connection errors (it is only in this process's memory).
func (b *Broker) recordPopped(q string, raw []byte) (string, error) {
	ctx := context.Background()
	fallback := pyfmt.NewUUID4().String()
	var err error
	for attempt := 1; attempt <= 6; attempt++ {
		var rc redis.Conn
		rc, err = b.c.get(ctx)
		if err != nil {
			if errors.Is(err, ErrClosed) {
				rc, err = b.c.dial(ctx) // closing: still try once
				if err != nil {
					return "", err
				}
			} else {
				_ = b.c.backoffWait(ctx, backoff(attempt))
				continue
			}
		}
		var tag string
		tag, err = redis.String(recordScript.Do(rc, b.names.UnackedKey(), b.names.UnackedIndexKey(),
			nowScore(b.now()), q, fallback, raw))
		rc.Close()
		if err == nil {
			return tag, nil
		}
		err = wrapErr("record script", err)
		if !errors.Is(err, ErrConn) {
			return "", err
		}
		_ = b.c.backoffWait(ctx, backoff(attempt))
	}
	return "", err
}

// ErrNotRecorded is the DecodeErr of a delivery that is not a JSON object
// and was therefore not recorded as unacked (kombu would drop it).
var ErrNotRecorded = errors.New("redis: message is not a JSON object; not recorded as unacked")

func newDelivery(queue, tag string, raw []byte) *protocol.Delivery {
	d := &protocol.Delivery{Queue: queue, Tag: tag, Raw: raw}
	d.Envelope, d.DecodeErr = protocol.DecodeEnvelope(raw)
	if tag == "" && d.DecodeErr == nil {
		d.Envelope, d.DecodeErr = nil, ErrNotRecorded
	}
	return d
}

// Ack removes the delivery's unacked record: MULTI ZREM unacked_index HDEL
// unacked EXEC (also used for reject without requeue).
func (b *Broker) Ack(ctx context.Context, d *protocol.Delivery) error {
	if d == nil || d.Tag == "" {
		return nil
	}
	return b.AckTags(ctx, d.Tag)
}

// AckTags acknowledges several deliveries in one MULTI/EXEC round trip.
func (b *Broker) AckTags(ctx context.Context, tags ...string) error {
	args := make([]any, 0, len(tags)+1)
	for _, t := range tags {
		if t != "" {
			args = append(args, t)
		}
	}
	if len(args) == 0 {
		return nil
	}
	rc, err := b.c.get(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	_ = rc.Send("MULTI")
	_ = rc.Send("ZREM", append([]any{b.names.UnackedIndexKey()}, args...)...)
	_ = rc.Send("HDEL", append([]any{b.names.UnackedKey()}, args...)...)
	if _, err := rc.Do("EXEC"); err != nil {
		return wrapErr("ack", err)
	}
	return nil
}

// Requeue is reject(requeue=True): the message goes back to the back of its
// queue (LPUSH, consumed last), in the sub-list of its priority, with the
// redelivered flags, and its unacked record is removed — atomically.
func (b *Broker) Requeue(ctx context.Context, d *protocol.Delivery) error {
	if d == nil || d.Tag == "" {
		return nil
	}
	_, err := b.restoreByTag(ctx, d.Tag, true, "+inf", d.Queue)
	return err
}

// Restore puts the message back at the front of its queue (RPUSH, consumed
// next) with the redelivered flags, as kombu does on warm shutdown.
func (b *Broker) Restore(ctx context.Context, d *protocol.Delivery) error {
	if d == nil || d.Tag == "" {
		return nil
	}
	_, err := b.restoreByTag(ctx, d.Tag, false, "+inf", d.Queue)
	return err
}

// restoreByTag is kombu's QoS.restore_by_tag: read the unacked record,
// route it (exchange "" → routing key; else the binding set), and in one
// atomic step remove the record and push the redelivered envelope. The
// atomic step is a compare-and-swap script on the record instead of
// WATCH unacked (same guarantee for this tag, no aborts caused by other
// tags). maxScore other than "+inf" skips a record touched since it was
// found expired. fallbackQueue receives a message whose named exchange has
// no matching binding (kombu would drop it). It reports whether the
// message was pushed.
func (b *Broker) restoreByTag(ctx context.Context, tag string, leftmost bool, maxScore, fallbackQueue string) (bool, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	for attempt := 0; attempt < 100; attempt++ {
		cur, err := redis.Bytes(rc.Do("HGET", b.names.UnackedKey(), tag))
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return false, wrapErr("HGET unacked", err)
		}
		var payload []byte
		var targets []string
		if cur != nil {
			payload, targets, err = b.routeRecord(rc, cur, fallbackQueue)
			if err != nil {
				return false, err
			}
		} else {
			cur = []byte{}
		}
		keys := append([]string{b.names.UnackedKey(), b.names.UnackedIndexKey()}, targets...)
		args := make([]any, 0, 1+len(keys)+5)
		args = append(args, len(keys))
		for _, k := range keys {
			args = append(args, k)
		}
		lm := "0"
		if leftmost {
			lm = "1"
		}
		args = append(args, cur, maxScore, lm, tag, payload)
		res, err := redis.Int(restoreScript.Do(rc, args...))
		if err != nil {
			return false, wrapErr("restore script", err)
		}
		switch res {
		case 1:
			return len(targets) > 0, nil
		case 0:
			return false, nil
		}
		if maxScore != "+inf" {
			return false, nil // touched or re-delivered meanwhile: not visible
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
	return false, fmt.Errorf("%w: restore of %s: record kept changing", ErrUnexpected, tag)
}

// routeRecord decodes an unacked record [envelope, exchange, routing_key]
// and returns the redelivered envelope and the list keys to push it to.
// An undecodable record yields no targets (the record is just removed, as
// kombu logs "Could not restore message" and drops it).
func (b *Broker) routeRecord(rc redis.Conn, rec []byte, fallbackQueue string) ([]byte, []string, error) {
	var parts []json.RawMessage
	if err := json.Unmarshal(rec, &parts); err != nil || len(parts) != 3 {
		b.log.Error("redis: could not restore message: bad unacked record", "record", string(rec))
		return nil, nil, nil
	}
	var ex, rk string
	_ = json.Unmarshal(parts[1], &ex)
	_ = json.Unmarshal(parts[2], &rk)
	payload, err := protocol.MarkRedelivered(parts[0])
	if err != nil {
		b.log.Error("redis: could not restore message", "error", err, "record", string(rec))
		return nil, nil, nil
	}
	prio := 0
	if env, err := protocol.DecodeEnvelope(parts[0]); err == nil {
		prio = env.Properties.Priority
	}
	var queues []string
	if ex == "" {
		if rk != "" {
			queues = []string{rk}
		}
	} else {
		members, err := redis.Strings(rc.Do("SMEMBERS", b.names.BindingKey(ex)))
		if err != nil {
			return nil, nil, wrapErr("SMEMBERS", err)
		}
		for _, m := range members {
			mrk, _, q, ok := b.names.ParseBindingMember(m)
			if ok && mrk == rk && !slices.Contains(queues, q) {
				queues = append(queues, q)
			}
		}
	}
	if len(queues) == 0 {
		fb := fallbackQueue
		if fb == "" {
			fb = rk
		}
		if fb == "" {
			b.log.Error("redis: could not restore message: no route", "exchange", ex, "routing_key", rk)
			return nil, nil, nil
		}
		b.log.Warn("redis: restored message has no binding; pushing to fallback queue (kombu would drop it)",
			"exchange", ex, "routing_key", rk, "queue", fb)
		queues = []string{fb}
	}
	keys := make([]string, len(queues))
	for i, q := range queues {
		keys[i] = b.names.QueueKey(q, prio)
	}
	return payload, keys, nil
}

// RestoreVisible is kombu's restore_visible: under the unacked_mutex lock
// (SET NX PX, released only by its owner) it restores, to the front of
// their queues, every unacked message whose index score is older than
// visibilityTimeout (0 = Config.VisibilityTimeout), newest first, at most
// Config.RestoreLimit (0 = all). It returns how many messages it pushed;
// (0, nil) when another process holds the mutex. Unlike kombu it skips a
// record whose score was refreshed by Touch after the scan.
func (b *Broker) RestoreVisible(ctx context.Context, visibilityTimeout time.Duration) (int, error) {
	if visibilityTimeout <= 0 {
		visibilityTimeout = b.cfg.visibilityTimeout()
	}
	token := pyfmt.NewUUID4().String()
	lease := b.cfg.mutexLease()
	ok, err := redis.String(b.c.do(ctx, "SET", b.names.UnackedMutexKey(), token, "NX", "PX",
		lease.Milliseconds()))
	if errors.Is(err, redis.ErrNil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if ok != "OK" {
		return 0, nil
	}
	defer func() {
		rc, err := b.c.get(context.WithoutCancel(ctx))
		if err != nil {
			return
		}
		defer rc.Close()
		if _, err := releaseScript.Do(rc, b.names.UnackedMutexKey(), token); err != nil {
			b.log.Warn("redis: unacked_mutex release failed", "error", err)
		}
	}()
	ceil := nowScore(b.now().Add(-visibilityTimeout))
	args := []any{b.names.UnackedIndexKey(), ceil, 0, "WITHSCORES"}
	if b.cfg.RestoreLimit > 0 {
		args = append(args, "LIMIT", 0, b.cfg.RestoreLimit)
	}
	vals, err := redis.Strings(b.c.do(ctx, "ZREVRANGEBYSCORE", args...))
	if err != nil {
		return 0, err
	}
	n := 0
	refreshed := b.now()
	for i := 0; i+1 < len(vals); i += 2 {
		if b.now().Sub(refreshed) > lease/3 {
			held, err := b.refreshMutex(ctx, token, lease)
			if err != nil {
				return n, err
			}
			if !held { // lost it: another process may scan now
				b.log.Warn("redis: unacked_mutex expired during restore; stopping this scan", "restored", n)
				return n, nil
			}
			refreshed = b.now()
		}
		pushed, err := b.restoreByTag(ctx, vals[i], false, ceil, "")
		if err != nil {
			return n, err
		}
		if pushed {
			n++
		}
	}
	return n, nil
}

// refreshMutex extends this process's unacked_mutex hold by lease; it
// reports false when the lock is no longer ours.
func (b *Broker) refreshMutex(ctx context.Context, token string, lease time.Duration) (bool, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	held, err := redis.Int(refreshMutexScript.Do(rc, b.names.UnackedMutexKey(), token, lease.Milliseconds()))
	if err != nil {
		return false, wrapErr("unacked_mutex refresh", err)
	}
	return held == 1, nil
}

// Touch sets the unacked_index score of held deliveries to now (ZADD XX, one
// round trip), so that no restore_visible hands them to another consumer
// while this process still holds them. Tags no longer recorded are ignored.
func (b *Broker) Touch(ctx context.Context, tags []string) error {
	if len(tags) == 0 {
		return nil
	}
	now := nowScore(b.now())
	args := make([]any, 0, 2+2*len(tags))
	args = append(args, b.names.UnackedIndexKey(), "XX")
	for _, t := range tags {
		if t != "" {
			args = append(args, now, t)
		}
	}
	if len(args) == 2 {
		return nil
	}
	_, err := b.c.do(ctx, "ZADD", args...)
	return err
}

// Publish pushes an envelope to a queue at the given priority (LPUSH to the
// priority sub-list), as kombu's _put.
func (b *Broker) Publish(ctx context.Context, queue string, priority int, envelope []byte) error {
	_, err := b.c.do(ctx, "LPUSH", b.names.QueueKey(queue, priority), envelope)
	return err
}

// Bind registers the binding of a consumed queue Q on its auto-created
// direct exchange Q with routing key Q: SADD _kombu.binding.Q "Q SEP SEP Q".
func (b *Broker) Bind(ctx context.Context, queue string) error {
	_, err := b.c.do(ctx, "SADD", b.names.BindingKey(queue), b.names.BindingMember(queue, "", queue))
	return err
}

// AddBinding SADDs member to _kombu.binding.<exchange> (a pidbox binding;
// failures go to the OnMailboxError hook).
func (b *Broker) AddBinding(ctx context.Context, exchange, member string) error {
	_, err := b.c.do(ctx, "SADD", b.names.BindingKey(exchange), member)
	return b.fail("sadd", err)
}

// RemoveBinding SREMs member from _kombu.binding.<exchange> (failures go
// to the OnMailboxError hook).
func (b *Broker) RemoveBinding(ctx context.Context, exchange, member string) error {
	_, err := b.c.do(ctx, "SREM", b.names.BindingKey(exchange), member)
	return b.fail("srem", err)
}

// Purge deletes every sub-list of queue in one MULTI (LLEN + DEL per step)
// EXEC and returns how many messages they held (celery purge, spec §7).
// Unacked records are not touched.
func (b *Broker) Purge(ctx context.Context, queue string) (int, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	_ = rc.Send("MULTI")
	for _, k := range b.names.QueueKeys(queue) {
		_ = rc.Send("LLEN", k)
		_ = rc.Send("DEL", k)
	}
	r, err := redis.Values(rc.Do("EXEC"))
	if err != nil {
		return 0, wrapErr("purge", err)
	}
	n := 0
	for i := 0; i < len(r); i += 2 {
		v, _ := redis.Int(r[i], nil)
		n += v
	}
	return n, nil
}

// QueueLength is the number of messages waiting in queue (sum of LLEN over
// its sub-lists, one pipelined round trip), as kombu's _size.
func (b *Broker) QueueLength(ctx context.Context, queue string) (int, error) {
	rc, err := b.c.get(ctx)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	keys := b.names.QueueKeys(queue)
	for _, k := range keys {
		_ = rc.Send("LLEN", k)
	}
	if err := rc.Flush(); err != nil {
		return 0, wrapErr("LLEN", err)
	}
	n := 0
	for range keys {
		v, err := redis.Int(rc.Receive())
		if err != nil {
			return 0, wrapErr("LLEN", err)
		}
		n += v
	}
	return n, nil
}

// UnackedCount is HLEN unacked: messages delivered to any consumer of this
// database and not yet acknowledged.
func (b *Broker) UnackedCount(ctx context.Context) (int, error) {
	return redis.Int(b.c.do(ctx, "HLEN", b.names.UnackedKey()))
}
