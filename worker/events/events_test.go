package events

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

type src struct{ clock worker.Clock }

func (s *src) Hostname() string     { return "go@test" }
func (s *src) Clock() *worker.Clock { return &s.clock }
func (s *src) Stats() worker.Stats  { return worker.Stats{Active: 1, Processed: 7} }

type pub struct {
	mu  sync.Mutex
	chs []string
	evs []map[string]any
}

func (p *pub) PublishFanout(_ context.Context, ch string, payload []byte) error {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		return err
	}
	evs, err := protocol.DecodeEvents(env)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chs = append(p.chs, ch)
	p.evs = append(p.evs, evs...)
	return nil
}

func (p *pub) types() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t []string
	for _, e := range p.evs {
		t = append(t, e["type"].(string))
	}
	return strings.Join(t, ",")
}

func TestGroups(t *testing.T) {
	d := New(Config{}, &src{}, &pub{})
	if d.TaskEventsEnabled() || !d.EnableTaskEvents() || d.EnableTaskEvents() || !d.TaskEventsEnabled() {
		t.Fatal("enable on a worker without -E")
	}
	if !d.DisableTaskEvents() || d.DisableTaskEvents() || d.TaskEventsEnabled() {
		t.Fatal("disable")
	}
	e := New(Config{TaskEvents: true}, &src{}, &pub{})
	// Celery: on a -E worker (all groups) enable says "already" and
	// disable changes nothing.
	if e.EnableTaskEvents() || e.DisableTaskEvents() || !e.TaskEventsEnabled() {
		t.Fatal("-E group semantics")
	}
}

func TestRunSendsWorkerAndTaskEvents(t *testing.T) {
	p := &pub{}
	d := New(Config{Names: protocol.DefaultNames(3), HeartbeatInterval: 20 * time.Millisecond, SWVer: "1.2"}, &src{}, p)
	d.ObserveTask(worker.TaskEvent{Type: worker.EventTaskStarted, ID: "x"}) // off: dropped
	d.EnableTaskEvents()
	d.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, ID: "x", Runtime: 500 * time.Millisecond,
		Meta: &protocol.ResultMeta{Status: protocol.StateSuccess, Result: json.RawMessage("1")}})
	d.HeartbeatNow()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for !strings.Contains(p.types(), "worker-heartbeat,worker-heartbeat") {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	types := p.types()
	if !strings.HasPrefix(types, "worker-online,") || !strings.HasSuffix(types, ",worker-offline") ||
		!strings.Contains(types, "task-succeeded") || strings.Contains(types, "task-started") {
		t.Fatalf("types %s", types)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var last int64
	for i, e := range p.evs {
		c, _ := e["clock"].(interface{ Int64() (int64, error) })
		n, _ := c.Int64()
		if n <= last {
			t.Errorf("clock not increasing at %d", i)
		}
		last = n
		if e["hostname"] != "go@test" || e["timestamp"] == nil || e["utcoffset"] == nil || e["pid"] == nil {
			t.Errorf("common fields missing: %v", e)
		}
		if !strings.HasPrefix(p.chs[i], "/3.celeryev/") {
			t.Errorf("channel %s", p.chs[i])
		}
		switch e["type"] {
		case "worker-online":
			for _, k := range []string{"freq", "active", "processed", "loadavg", "sw_ident", "sw_ver", "sw_sys"} {
				if e[k] == nil {
					t.Errorf("worker-online lacks %s", k)
				}
			}
			if e["sw_ident"] != "omics-worker" || e["sw_ver"] != "1.2" {
				t.Errorf("sw %v", e)
			}
		case "task-succeeded":
			if e["uuid"] != "x" || p.chs[i] != "/3.celeryev/task.succeeded" {
				t.Errorf("task event %v on %s", e, p.chs[i])
			}
		}
	}
}

func TestLoadAvg(t *testing.T) {
	if l := LoadAvg(); len(l) != 3 {
		t.Fatal(l)
	}
}
