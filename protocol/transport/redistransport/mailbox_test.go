package redistransport

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

func TestMailboxListOperations(t *testing.T) {
	b, c, pfx := newTestBroker(t, resultsDB, Config{})
	ctx := ctxT(t)
	q := "reply." + uniq(t)
	for _, p := range []int{0, 0, 3, 9} {
		if err := b.Publish(ctx, q, p, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.QueueLengths(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 2 || got[3] != 1 || got[6] != 0 || got[9] != 1 {
		t.Errorf("QueueLengths = %v, want 0:2 3:1 6:0 9:1", got)
	}
	msg, err := b.PopReply(ctx, q, time.Second)
	if err != nil || string(msg) != "m" {
		t.Fatalf("PopReply = %q, %v", msg, err)
	}
	if err := b.DeleteQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(c.Do("EXISTS", pfx+q, pfx+q+"\x06\x163", pfx+q+"\x06\x169")); n != 0 {
		t.Errorf("%d sub-lists left after DeleteQueue", n)
	}
	// Empty list: nil, nil after the timeout.
	if msg, err := b.PopReply(ctx, q, time.Second); msg != nil || err != nil {
		t.Errorf("PopReply of an empty list = %q, %v; want nil, nil", msg, err)
	}
}

// TestMailboxErrorHook: failures of the mailbox operations reach the
// OnMailboxError hook under their metric names; Bind (the consume path)
// does not.
func TestMailboxErrorHook(t *testing.T) {
	b, _, _ := newTestBroker(t, resultsDB, Config{})
	var mu sync.Mutex
	var ops []string
	b.OnMailboxError(func(op string) { mu.Lock(); ops = append(ops, op); mu.Unlock() })
	b.Close()
	ctx := ctxT(t)
	_ = b.Bind(ctx, "q")
	_ = b.PublishFanout(ctx, "ch", nil)
	_ = b.Reply(ctx, "ex", "rk", nil)
	_ = b.AddBinding(ctx, "ex", "m")
	_ = b.RemoveBinding(ctx, "ex", "m")
	_, _ = b.PopReply(ctx, "q", time.Second)
	_ = b.DeleteQueue(ctx, "q")
	_, err := b.SubscribePayloads(ctx, "p*")
	if !errors.Is(err, ErrClosed) {
		t.Errorf("SubscribePayloads on a closed broker: %v, want ErrClosed", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"publish", "reply", "sadd", "srem", "brpop", "del", "subscribe"}
	if len(ops) != len(want) {
		t.Fatalf("hook saw %q, want %q", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Fatalf("hook saw %q, want %q", ops, want)
		}
	}
}

func TestDial(t *testing.T) {
	testenv.NeedRedis(t, otherDB)
	ep, err := ParseURL(testURL(otherDB))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(ctxT(t), ep, Config{ReadTimeout: -1, ClientName: "omt-dial"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	db, err := redis.String(c.Do("CLIENT", "GETNAME"))
	if err != nil || db != "omt-dial" {
		t.Errorf("CLIENT GETNAME = %q, %v", db, err)
	}
	if _, err := Dial(ctxT(t), Endpoint{Network: "tcp", Address: "127.0.0.1:1"}, Config{}); !errors.Is(err, ErrConn) {
		t.Errorf("Dial of a closed port: %v, want ErrConn", err)
	}
}
