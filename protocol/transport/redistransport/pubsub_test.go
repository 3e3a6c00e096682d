package redistransport

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

func TestSubscribeFanout(t *testing.T) {
	b, _, pfx := newTestBroker(t, brokerDB, Config{})
	n := b.Names()
	ctx, cancel := context.WithCancel(ctxT(t))
	msgs, err := b.Subscribe(ctx, n.FanoutPattern("celeryev", "worker.#"), n.PidboxChannel())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PublishFanout(ctx, n.EventChannel("task-succeeded"), []byte("not for us")); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishFanout(ctx, n.EventChannel("worker-heartbeat"), []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishFanout(ctx, n.PidboxChannel(), []byte("ping")); err != nil {
		t.Fatal(err)
	}
	m := <-msgs
	if m.Channel != pfx+"/1.celeryev/worker.heartbeat" || m.Pattern != pfx+"/1.celeryev/worker.*" || string(m.Data) != "hb" {
		t.Errorf("message = %+v", m)
	}
	if ex, rk := n.ParseFanoutChannel(m.Channel); ex != "celeryev" || rk != "worker.heartbeat" {
		t.Errorf("ParseFanoutChannel = %q %q", ex, rk)
	}
	m = <-msgs
	if m.Channel != pfx+"/1.celery.pidbox" || string(m.Data) != "ping" {
		t.Errorf("message = %+v", m)
	}
	cancel()
	for range msgs { // closed after cancel
	}
}

// TestSubscribeReconnects kills the subscriber's connection and checks that
// messages flow again afterwards.
func TestSubscribeReconnects(t *testing.T) {
	name := "omt-sub-" + strings.ReplaceAll(uniq(t), ".", "")[:20]
	b, c, _ := newTestBroker(t, brokerDB, Config{ClientName: name})
	ch := b.Names().PidboxChannel()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	msgs, err := b.Subscribe(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	list, err := redis.String(c.Do("CLIENT", "LIST"))
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") {
			id := strings.TrimPrefix(strings.Fields(line)[0], "id=")
			if _, err := c.Do("CLIENT", "KILL", "ID", id); err == nil {
				killed++
			}
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d subscriber connections", killed)
	}
	// Publish until the resubscribed connection gets one (pub/sub drops
	// what is published while disconnected).
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case m := <-msgs:
			if string(m.Data) != "again" {
				t.Fatalf("got %+v", m)
			}
			return
		case <-tick.C:
			if err := b.PublishFanout(ctx, ch, []byte("again")); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("no message after reconnect")
		}
	}
}

func TestReply(t *testing.T) {
	b, c, pfx := newTestBroker(t, brokerDB, Config{})
	n := b.Names()
	oid := uniq(t)
	replyQ := oid + ".reply.celery.pidbox"
	if err := b.AddBinding(ctxT(t), "reply.celery.pidbox", n.BindingMember(oid, "", replyQ)); err != nil {
		t.Fatal(err)
	}
	if err := b.Reply(ctxT(t), "reply.celery.pidbox", oid, []byte(`{"r":1}`)); err != nil {
		t.Fatal(err)
	}
	if v, _ := redis.String(c.Do("RPOP", pfx+replyQ)); v != `{"r":1}` {
		t.Errorf("reply list = %q", v)
	}
	// Unknown routing key: silently dropped.
	if err := b.Reply(ctxT(t), "reply.celery.pidbox", "gone-"+oid, []byte(`{"r":2}`)); err != nil {
		t.Fatal(err)
	}
	keys, _ := redis.Strings(c.Do("KEYS", escapeGlob(pfx)+"*"))
	for _, k := range keys {
		if strings.Contains(k, "gone-") {
			t.Errorf("dropped reply created %q", k)
		}
	}
}
