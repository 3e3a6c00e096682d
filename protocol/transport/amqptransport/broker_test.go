package amqptransport

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/omicsomics/omics-worker/protocol"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ in, host, vhost, user string }{
		{"amqp://guest:guest@127.0.0.1:5672/vh", "127.0.0.1", "vh", "guest"},
		{"pyamqp://u:p@h//", "h", "/", "u"},
		{"amqp://h", "h", "/", "guest"},
		{"amqp://h/", "h", "/", "guest"},
		{"amqps://u:p@h:5671/a%2Fb", "h", "a/b", "u"},
	} {
		ep, err := ParseURL(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if ep.URI.Host != tc.host || ep.URI.Vhost != tc.vhost || ep.URI.Username != tc.user {
			t.Errorf("%s: got %+v", tc.in, ep.URI)
		}
	}
	if _, err := ParseURL("redis://h"); err == nil {
		t.Error("redis:// accepted")
	}
}

// TestDeclareMatchesCelery: the task queue is declared exactly as a Python
// peer declares it, so a second declaration with Celery's arguments (here
// re-done through a raw client) succeeds, and a queue with other arguments
// is used passively instead of failing.
func TestDeclareMatchesCelery(t *testing.T) {
	url := testVhost(t)
	b := newTestBroker(t, url, Config{})
	ctx := ctxT(t, 20*time.Second)
	if err := b.Bind(ctx, "celery"); err != nil {
		t.Fatal(err)
	}
	ch := rawConn(t, url)
	if err := ch.ExchangeDeclare("celery", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("exchange redeclare with Celery's arguments: %v", err)
	}
	if _, err := ch.QueueDeclare("celery", true, false, false, false, nil); err != nil {
		t.Fatalf("queue redeclare with Celery's arguments: %v", err)
	}
	// A queue created with x-max-priority by someone else: the worker
	// (configured without) falls back to a passive declaration.
	if _, err := ch.QueueDeclare("prio", true, false, false, false, amqp.Table{"x-max-priority": int32(10)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(ctx, "prio"); err != nil {
		t.Fatalf("bind of a queue with other arguments: %v", err)
	}
}

// TestFetchAckRequeue: publish, fetch (envelope round trip), requeue comes
// back redelivered, ack removes it; an ack of a tag already settled is a
// no-op (never acked twice).
func TestFetchAckRequeue(t *testing.T) {
	url := testVhost(t)
	b := newTestBroker(t, url, Config{Prefetch: 4})
	ctx := ctxT(t, 30*time.Second)
	if err := b.Bind(ctx, "celery"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "id-1", "")); err != nil {
		t.Fatal(err)
	}
	d, err := b.Fetch(ctx, []string{"celery"}, 5*time.Second)
	if err != nil || d == nil {
		t.Fatalf("fetch: %v %v", d, err)
	}
	if d.DecodeErr != nil {
		t.Fatal(d.DecodeErr)
	}
	if got := d.Envelope.HeaderString("id"); got != "id-1" {
		t.Fatalf("id header %q", got)
	}
	body, err := d.Envelope.DecodeBody()
	if err != nil || string(body) != `[[1,2],{},{"callbacks":null}]` {
		t.Fatalf("body %q %v", body, err)
	}
	var tl []any
	if ok := d.Envelope.Header("timelimit", &tl); !ok || len(tl) != 2 || tl[0] != nil {
		t.Fatalf("timelimit header %v", tl)
	}
	if err := b.Requeue(ctx, d); err != nil {
		t.Fatal(err)
	}
	d2, err := b.Fetch(ctx, []string{"celery"}, 5*time.Second)
	if err != nil || d2 == nil {
		t.Fatalf("refetch: %v %v", d2, err)
	}
	if !d2.Envelope.Properties.DeliveryInfo.Redelivered {
		t.Error("requeued message not marked redelivered")
	}
	if err := b.Ack(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, d2); err != nil { // second ack: no-op, channel stays
		t.Fatal(err)
	}
	if err := b.Ack(ctx, d); err != nil { // tag already requeued: no-op
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "id-2", "")); err != nil {
		t.Fatal(err)
	}
	d3, err := b.Fetch(ctx, []string{"celery"}, 5*time.Second)
	if err != nil || d3 == nil || d3.Envelope.HeaderString("id") != "id-2" {
		t.Fatalf("fetch after double ack: %v %v (the channel was closed?)", d3, err)
	}
	_ = b.Ack(ctx, d3)
	if n, _ := b.QueueLength(ctx, "celery"); n != 0 {
		t.Errorf("queue length %d after acks", n)
	}
}

// TestPrefetch: basic.qos bounds the deliveries held; an ETA message
// raises it by one (Celery's increment_eventually).
func TestPrefetch(t *testing.T) {
	url := testVhost(t)
	b := newTestBroker(t, url, Config{Prefetch: 2})
	ctx := ctxT(t, 30*time.Second)
	if err := b.Bind(ctx, "celery"); err != nil {
		t.Fatal(err)
	}
	eta := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000")
	b.cfg.ETAParkAfter = -1
	if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "eta", eta)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "t"+string(rune('0'+i)), "")); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < 3 {
		ds, err := b.FetchMany(ctx, []string{"celery"}, 10, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			got = append(got, d.Envelope.HeaderString("id"))
		}
	}
	if len(got) != 3 {
		t.Fatalf("held %d deliveries %v, want prefetch 2 + 1 ETA", len(got), got)
	}
	ds, _ := b.FetchMany(ctx, []string{"celery"}, 10, 500*time.Millisecond)
	if len(ds) != 0 {
		t.Fatalf("got %d more deliveries beyond the prefetch", len(ds))
	}
	if c, _ := b.UnackedCount(ctx); c != 3 {
		t.Errorf("unacked %d", c)
	}
}

// TestReconnect: the server closes the connection while a delivery is
// held; the broker reconnects, re-declares and re-consumes; the old tag is
// not acknowledged (it would close the new channel), RabbitMQ redelivers
// the message, nothing is lost and nothing acked twice.
func TestReconnect(t *testing.T) {
	url := testVhost(t)
	b := newTestBroker(t, url, Config{Prefetch: 4})
	ctx := ctxT(t, 60*time.Second)
	if err := b.Bind(ctx, "celery"); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "r-1", "")); err != nil {
		t.Fatal(err)
	}
	d, err := b.Fetch(ctx, []string{"celery"}, 5*time.Second)
	if err != nil || d == nil {
		t.Fatalf("fetch: %v %v", d, err)
	}
	vh := url[strings.LastIndex(url, "/")+1:]
	if out, err := exec.Command("rabbitmqctl", "close_all_connections", "-p", vh, "test").CombinedOutput(); err != nil {
		t.Fatalf("close_all_connections: %v %s", err, out)
	}
	var d2 *protocol.Delivery
	for d2 == nil && ctx.Err() == nil {
		d2, _ = b.Fetch(ctx, []string{"celery"}, 2*time.Second)
	}
	if d2 == nil || d2.Envelope.HeaderString("id") != "r-1" || !d2.Envelope.Properties.DeliveryInfo.Redelivered {
		t.Fatalf("redelivery after reconnect: %+v", d2)
	}
	if err := b.Ack(ctx, d); err != nil { // tag of the dead channel: skipped
		t.Fatal(err)
	}
	if err := b.Ack(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "celery", 0, taskEnvelope(t, "r-2", "")); err != nil {
		t.Fatal(err)
	}
	d3, err := b.Fetch(ctx, []string{"celery"}, 5*time.Second)
	if err != nil || d3 == nil || d3.Envelope.HeaderString("id") != "r-2" {
		t.Fatalf("after reconnect: %v %v", d3, err)
	}
	_ = b.Ack(ctx, d3)
	if n, err := b.QueueLength(ctx, "celery"); err != nil || n != 0 {
		t.Errorf("queue length %d %v", n, err)
	}
	if c, _ := b.UnackedCount(ctx); c != 0 {
		t.Errorf("unacked %d", c)
	}
}
