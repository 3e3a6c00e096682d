package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/mask/masktest"
	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/protocol/transport/redistransport"
)

// TestInspectConfShowsResultBackendFlag is the regression test of the
// bug found in issue 10 #1: `inspect conf` and `inspect report` read
// CELERY_RESULT_BACKEND again and ignored --result-backend. The worker
// runs in-process with the flag and a different environment value; the
// replies show the flag's backend, masked. Redis database
// testenv.RedisDBLoadgen.
func TestInspectConfShowsResultBackendFlag(t *testing.T) {
	requireLoadgenRedis(t)
	t.Setenv("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/14")
	flagBackend := "redis://u:" + masktest.Password + "@127.0.0.1:6379/12"
	node := fmt.Sprintf("conf%d_%d@test", os.Getpid(), time.Now().UnixNano())
	queue := "conf_" + strings.NewReplacer("@", "_").Replace(node)
	stop := runInprocWorker("-Q", queue, "-n", node, "-b", loadgenRedisURL, "--result-backend", flagBackend,
		"--file-tasks=false", "--without-mingle", "--without-heartbeat", "-l", "warning")
	defer func() {
		_, out := stop()
		cleanupLoadgenKeys(t, queue, "")
		masktest.Check(t, "worker log", out)
	}()

	broker, err := redistransport.NewBroker(loadgenRedisURL, redistransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	conf := inspect(t, broker, node, "conf")
	want := "redis://u:**@127.0.0.1:6379/12"
	if got, _ := conf.(map[string]any)["result_backend"].(string); got != want {
		t.Errorf("inspect conf result_backend = %q, want %q (the flag's, masked)", got, want)
	}
	report, _ := inspect(t, broker, node, "report").(map[string]any)["ok"].(string)
	if !strings.Contains(report, "results:"+want) || strings.Contains(report, "/14") {
		t.Errorf("inspect report does not show the flag's backend %s:\n%s", want, report)
	}
	masktest.Check(t, "inspect report", report)
}

// inspect sends a remote-control request to node and waits for its
// reply (retrying while the worker is starting).
func inspect(t *testing.T, b *redistransport.Broker, node, method string) any {
	t.Helper()
	ctx := context.Background()
	oid := pyfmt.NewUUID4().String()
	queue := protocol.ReplyQueue(oid)
	member := b.Names().BindingMember(oid, "", queue)
	if err := b.AddBinding(ctx, protocol.ReplyExchange, member); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = b.RemoveBinding(ctx, protocol.ReplyExchange, member)
		_ = b.DeleteQueue(ctx, queue)
	}()
	for attempt := 0; attempt < 60; attempt++ {
		env, err := protocol.EncodeControlRequest(&protocol.ControlRequest{Method: method, Destination: []string{node},
			Ticket: pyfmt.NewUUID4().String(), ReplyTo: &protocol.ReplyTo{Exchange: protocol.ReplyExchange, RoutingKey: oid}})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PublishFanout(ctx, b.Names().PidboxChannel(), env); err != nil {
			t.Fatal(err)
		}
		raw, err := b.PopReply(ctx, queue, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if raw == nil {
			continue // not subscribed yet
		}
		e, err := protocol.DecodeEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		from, value, _, err := protocol.DecodeControlReply(e)
		if err != nil || from != node {
			t.Fatalf("reply from %q: %v", from, err)
		}
		return value
	}
	t.Fatalf("no %s reply from %s", method, node)
	return nil
}
