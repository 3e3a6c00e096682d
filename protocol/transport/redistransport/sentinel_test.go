package redistransport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/sentineltest"
	"github.com/omicsomics/omics-worker/protocol"
)

// Sentinel integration tests: each starts its own master, replica and
// three sentinels (internal/sentineltest) on spare loopback ports.

func sentinelCfg(name string) Config {
	return Config{MasterName: sentineltest.MasterName, SentinelPassword: sentineltest.SentinelPassword,
		ClientName: name, GlobalKeyPrefix: name + ":"}
}

// clientsNamed counts the connections named name on server s.
func clientsNamed(t *testing.T, c *sentineltest.Cluster, s *sentineltest.Server, name string) int {
	t.Helper()
	conn := c.Conn(s, 0)
	defer conn.Close()
	list, err := redis.String(conn.Do("CLIENT", "LIST"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(list, " name="+name+" ")
}

func TestSentinelDiscovery(t *testing.T) {
	c := sentineltest.Start(t)
	ctx := ctxT(t)
	master := c.Master()

	// A dead first sentinel is skipped; the URL password is the master's.
	dead := "sentinel://127.0.0.1:1/0;" + c.URL(0)
	dead = strings.Replace(dead, "sentinel://127.0.0.1:1/0;sentinel://:"+sentineltest.MasterPassword+"@",
		"sentinel://:"+sentineltest.MasterPassword+"@127.0.0.1:1/0;sentinel://", 1)
	b, err := NewBroker(dead, sentinelCfg("disc"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Publish(ctx, "q", 0, envelope(envOpts{tag: "t1"})); err != nil {
		t.Fatalf("publish through sentinels: %v", err)
	}
	conn := c.Conn(master, 0)
	defer conn.Close()
	if n, err := redis.Int(conn.Do("LLEN", "disc:q")); err != nil || n != 1 {
		t.Fatalf("LLEN on the master = %d, %v; want 1", n, err)
	}
	if got := b.Endpoint().String(); strings.Contains(got, sentineltest.MasterPassword) || !strings.HasPrefix(got, "sentinel://") {
		t.Errorf("Endpoint().String() = %q", got)
	}

	bad := []struct {
		name string
		cfg  Config
		want error
	}{
		{"no master_name", Config{SentinelPassword: sentineltest.SentinelPassword}, ErrBadURL},
		{"unknown master_name", Config{MasterName: "nope", SentinelPassword: sentineltest.SentinelPassword}, ErrNoMaster},
		{"no sentinel password", Config{MasterName: sentineltest.MasterName}, ErrNoMaster},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBroker(c.URL(0), tt.cfg)
			if err == nil {
				defer b.Close()
				err = b.Ping(ctx)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
}

// TestSentinelRoleChecked: an address that is not a master (here the
// replica, as a sentinel with a stale view would give) is refused after
// ROLE and forgotten, so the next dial asks the sentinels again.
func TestSentinelRoleChecked(t *testing.T) {
	c := sentineltest.Start(t)
	ctx := ctxT(t)
	b, err := NewBroker(c.URL(0), sentinelCfg("role"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	replica := c.Redis[1]
	b.c.sent.mu.Lock()
	b.c.sent.master = replica.Addr()
	b.c.sent.mu.Unlock()
	_, err = b.c.dial(ctx)
	if !errors.Is(err, ErrConn) || !strings.Contains(err.Error(), "not a master") {
		t.Fatalf("dial to the replica: err = %v; want ErrConn ... not a master", err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("after the refused replica, Ping: %v", err)
	}
	if got, want := b.c.sent.master, c.MasterAddr(); got != want {
		t.Fatalf("resolver master = %s; want %s", got, want)
	}
}

// failoverRig is a broker + result backend (group-commit writer) + a
// pidbox-style subscriber on a sentinel deployment, with deliveries held
// unacked across the failover.
type failoverRig struct {
	c    *sentineltest.Cluster
	b    *Broker
	rb   *ResultBackend
	sub  <-chan Message
	name string
	held []*protocol.Delivery
}

func newFailoverRig(t *testing.T, name string, published, fetched int) *failoverRig {
	t.Helper()
	r := &failoverRig{c: sentineltest.Start(t), name: name}
	ctx := ctxT(t)
	var err error
	if r.b, err = NewBroker(r.c.URL(0), sentinelCfg(name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.b.Close() })
	if r.rb, err = NewResultBackend(r.c.URL(1), sentinelCfg(name)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.rb.Close() })
	r.rb.UseBroker(r.b)
	if r.rb.w == nil {
		t.Fatal("broker and backend on the same sentinel group: want the group-commit writer")
	}
	if r.sub, err = r.b.Subscribe(context.Background(), r.b.Names().PidboxChannel()); err != nil {
		t.Fatal(err)
	}
	for i := range published {
		if err := r.b.Publish(ctx, "q", 0, envelope(envOpts{tag: fmt.Sprintf("m%d", i)})); err != nil {
			t.Fatal(err)
		}
	}
	for range fetched {
		d, err := r.b.Fetch(ctx, []string{"q"}, time.Second)
		if err != nil || d == nil {
			t.Fatalf("fetch: %v %v", d, err)
		}
		r.held = append(r.held, d)
	}
	// One write through the writer so its connection exists.
	if err := r.rb.StoreAndAck(ctx, success(r.held[0].Tag), r.held[0]); err != nil {
		t.Fatal(err)
	}
	r.held = r.held[1:]
	r.waitReplicated(t)
	return r
}

func success(id string) *protocol.ResultMeta {
	now := time.Now()
	return &protocol.ResultMeta{Status: protocol.StateSuccess, Result: 1, TaskID: id, DateDone: &now}
}

// waitReplicated waits until the replica has every write of the master
// (WAIT), so that the test measures the transport, not replication loss.
func (r *failoverRig) waitReplicated(t *testing.T) {
	t.Helper()
	conn := r.c.Conn(r.c.Master(), 0)
	defer conn.Close()
	if n, err := redis.Int(conn.Do("WAIT", 1, 5000)); err != nil || n != 1 {
		t.Fatalf("WAIT 1: %d %v", n, err)
	}
}

// check proves that after a failover every pool works on the new master:
// the held (unacked) deliveries are acked with their results through the
// writer, the remaining messages are fetched (BRPOP), a pidbox broadcast
// reaches the subscriber, and no connection is left on the old master.
func (r *failoverRig) check(t *testing.T, old, now *sentineltest.Server, remaining int) {
	t.Helper()
	ctx := ctxT(t)
	// Until the +switch-master announcement reached the clients, a
	// demoted-but-not-yet-reconfigured old master still takes writes
	// that the sentinels will discard (Sentinel's split-brain window);
	// the test measures after the switch.
	for _, s := range []*resolver{r.b.c.sent, r.rb.c.sent} {
		deadline := time.Now().Add(20 * time.Second)
		for s.Switches() < 1 && old != nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i := range remaining {
		d, err := retry(t, func() (*protocol.Delivery, error) { return r.b.Fetch(ctx, []string{"q"}, time.Second) })
		if d == nil {
			t.Fatalf("fetch %d after failover: %v", i, err)
		}
		r.held = append(r.held, d)
	}
	conn := r.c.Conn(now, 0)
	defer conn.Close()
	if n, _ := redis.Int(conn.Do("HLEN", r.name+":unacked")); n != len(r.held) {
		t.Fatalf("unacked on the new master = %d; want %d (state continues)", n, len(r.held))
	}
	for _, d := range r.held {
		if _, err := retry(t, func() (bool, error) { return true, r.rb.StoreAndAck(ctx, success(d.Tag), d) }); err != nil {
			t.Fatalf("StoreAndAck after failover: %v", err)
		}
	}
	for _, key := range []string{r.name + ":unacked", r.name + ":unacked_index", r.name + ":q"} {
		if n, _ := redis.Int(conn.Do("EXISTS", key)); n != 0 {
			t.Errorf("%s still exists on the new master", key)
		}
	}
	if _, err := conn.Do("SELECT", 1); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.held {
		if n, _ := redis.Int(conn.Do("EXISTS", "celery-task-meta-"+d.Tag)); n != 1 {
			t.Errorf("result of %s missing on the new master", d.Tag)
		}
	}
	// Pub/sub: the subscriber re-subscribed on the new master.
	deadline := time.Now().Add(20 * time.Second)
	got := false
	for !got && time.Now().Before(deadline) {
		_ = r.b.PublishFanout(ctx, r.b.Names().PidboxChannel(), []byte("ping"))
		select {
		case m := <-r.sub:
			got = string(m.Data) == "ping"
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !got {
		t.Fatal("pidbox subscriber did not receive a broadcast after the failover")
	}
	// An empty queue: the blocking fetch uses the BRPOP connection.
	if d, err := retry(t, func() (*protocol.Delivery, error) { return r.b.Fetch(ctx, []string{"q"}, 100*time.Millisecond) }); d != nil || err != nil {
		t.Fatalf("blocking fetch on the empty queue: %v %v", d, err)
	}
	if old != nil {
		if n := clientsNamed(t, r.c, old, r.name); n != 0 {
			t.Errorf("%d connections left on the old master", n)
		}
	}
	// command pool + BRPOP + subscriber + writer (+ the pool of the backend)
	if n := clientsNamed(t, r.c, now, r.name); n < 4 {
		t.Errorf("only %d connections on the new master; want pool, BRPOP, pub/sub and writer", n)
	}
	if r.b.c.sent.Switches() < 1 && old != nil {
		t.Errorf("resolver followed no +switch-master")
	}
}

// retry calls f until it succeeds without a connection error (the
// failover may still be settling).
func retry[T any](t *testing.T, f func() (T, error)) (T, error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := f()
		if err == nil || !errors.Is(err, ErrConn) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestSentinelFailoverFollow: SENTINEL FAILOVER demotes the master (it
// stays up, as a replica): the +switch-master watcher moves every pool.
func TestSentinelFailoverFollow(t *testing.T) {
	r := newFailoverRig(t, "follow", 6, 3)
	old, now := r.c.Failover(30 * time.Second)
	t.Logf("failover %s -> %s", old.Addr(), now.Addr())
	r.check(t, old, now, 3)
}

// TestSentinelMasterKilled: SIGKILL of the master; the sentinels promote
// the replica and the clients follow.
func TestSentinelMasterKilled(t *testing.T) {
	r := newFailoverRig(t, "killed", 6, 3)
	old := r.c.Master()
	old.Kill()
	now := r.c.WaitSwitch(old, 30*time.Second)
	t.Logf("master %s killed, now %s", old.Addr(), now.Addr())
	r.check(t, nil, now, 3)
}

// TestSentinelReadOnlyRediscovers: a connection to a master that was
// demoted behind the resolver's back (no +switch-master seen: the
// watcher is stopped) gets READONLY; it is closed and the next command
// goes to the new master.
func TestSentinelReadOnlyRediscovers(t *testing.T) {
	c := sentineltest.Start(t)
	ctx := ctxT(t)
	b, err := NewBroker(c.URL(0), sentinelCfg("ro"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	b.c.sent.close() // no watcher: only READONLY can tell
	if err := b.Publish(ctx, "q", 0, envelope(envOpts{tag: "a"})); err != nil {
		t.Fatal(err)
	}
	// Demote by hand for a moment: the replica becomes master, the master
	// its replica (no sentinel involved, no client killed).
	oldM, newM := c.Redis[0], c.Redis[1]
	nc := c.Conn(newM, 0)
	defer nc.Close()
	oc := c.Conn(oldM, 0)
	defer oc.Close()
	if _, err := redis.Int(oc.Do("WAIT", 1, 5000)); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Do("REPLICAOF", "127.0.0.1", newM.Port); err != nil {
		t.Fatal(err)
	}
	// The resolver still believes in the old master.
	err = b.Publish(ctx, "q", 0, envelope(envOpts{tag: "b"}))
	if !errors.Is(err, ErrConn) || !strings.Contains(err.Error(), "READONLY") {
		t.Fatalf("publish on the demoted master: err = %v; want ErrConn with READONLY", err)
	}
	b.c.sent.mu.Lock()
	forgotten := b.c.sent.master == ""
	b.c.sent.mu.Unlock()
	if !forgotten {
		t.Fatal("READONLY did not make the resolver forget the master")
	}
	// Swap back before the sentinels act (they still name oldM): the
	// next command asks them again, checks ROLE, and works.
	if _, err := oc.Do("REPLICAOF", "NO", "ONE"); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Do("REPLICAOF", "127.0.0.1", oldM.Port); err != nil {
		t.Fatal(err)
	}
	if _, err := retry(t, func() (bool, error) {
		return true, b.Publish(ctx, "q", 0, envelope(envOpts{tag: "b"}))
	}); err != nil {
		t.Fatalf("publish after re-discovery: %v", err)
	}
	if n, _ := redis.Int(oc.Do("LLEN", "ro:q")); n != 2 {
		t.Fatalf("LLEN on the master = %d; want 2", n)
	}
}
