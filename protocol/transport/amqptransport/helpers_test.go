package amqptransport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/omicsomics/omics-worker/internal/testenv"
	"github.com/omicsomics/omics-worker/protocol"
)

// testVhost creates a fresh vhost on the local RabbitMQ (rabbitmqctl) and
// returns its amqp:// URL; the vhost is deleted at cleanup. A missing
// RabbitMQ fails the test with a hint (skipped under -short).
func testVhost(t *testing.T) string {
	t.Helper()
	testenv.NeedRabbitMQ(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	vh := "omics-test-" + hex.EncodeToString(b)
	ctl := func(args ...string) {
		if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
		}
	}
	ctl("add_vhost", vh)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "delete_vhost", vh).Run() })
	ctl("set_permissions", "-p", vh, "guest", ".*", ".*", ".*")
	return "amqp://guest:guest@127.0.0.1:5672/" + vh
}

func newTestBroker(t *testing.T, url string, cfg Config) *Broker {
	t.Helper()
	if cfg.NodeName == "" {
		cfg.NodeName = "celery@test"
	}
	b, err := NewBroker(url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return b
}

// rawConn is a plain amqp091 connection to url for assertions.
func rawConn(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	ep, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := amqp.Dial(ep.URI.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// taskEnvelope is a protocol-2 task message as a kombu envelope.
func taskEnvelope(t *testing.T, id string, eta string) []byte {
	t.Helper()
	body, _ := json.Marshal([]any{[]any{1, 2}, map[string]any{}, map[string]any{"callbacks": nil}})
	h := map[string]any{"lang": "py", "task": "tasks.add", "id": id, "root_id": id, "parent_id": nil,
		"retries": 0, "timelimit": []any{nil, nil}, "argsrepr": "(1, 2)", "kwargsrepr": "{}"}
	if eta != "" {
		h["eta"] = eta
	} else {
		h["eta"] = nil
	}
	hb, _ := json.Marshal(h)
	env := protocol.Envelope{
		Body: string(body), ContentType: "application/json", ContentEncoding: "utf-8",
		Headers:    map[string]json.RawMessage{},
		Properties: protocol.Properties{CorrelationID: id, DeliveryMode: 2, BodyEncoding: "utf-8"},
	}
	var hm map[string]json.RawMessage
	_ = json.Unmarshal(hb, &hm)
	env.Headers = hm
	raw, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
