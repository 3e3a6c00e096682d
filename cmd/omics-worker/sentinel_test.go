package main

// Redis Sentinel tests of the worker binary (issue 12, item 2). Each test
// starts its own master, replica and three sentinels
// (internal/sentineltest).
//
// TestSentinelChaos: 2,000 diag.progress tasks published while the worker
// (broker and result backend both on sentinel://) runs; the master is
// SIGKILLed mid-run; the worker follows the promoted replica and the run
// completes. The publisher confirms each batch with WAIT 1 (the replica
// has it): every confirmed task must execute (none lost through the
// worker); the unconfirmed ones that never ran are the asynchronous
// replication's loss, Celery's own limit with Redis Sentinel, reported.
//
// TestSentinelPythonClient: the real celery client (5.2, and 5.5 when its
// root is usable) publishes through sentinel:// and reads the results
// through the sentinel:// result backend.

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/internal/sentineltest"
	"github.com/omicsomics/omics-worker/protocol"
)

func sentinelWorkerEnv(c *sentineltest.Cluster) []string {
	return []string{
		"CELERY_BROKER_URL=" + c.URL(0), "CELERY_RESULT_BACKEND=" + c.URL(1),
		"CELERY_BROKER_TRANSPORT_OPTIONS=" + c.TransportOptions(),
		"CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS=" + c.TransportOptions(),
	}
}

// masterOf asks the sentinels (no testing.T: used from goroutines).
func masterOf(c *sentineltest.Cluster) (string, error) {
	var errs []error
	for _, s := range c.Sentinels {
		conn, err := redigo.Dial("tcp", s.Addr(), redigo.DialPassword(sentineltest.SentinelPassword),
			redigo.DialConnectTimeout(time.Second), redigo.DialReadTimeout(time.Second))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r, err := redigo.Strings(conn.Do("SENTINEL", "get-master-addr-by-name", sentineltest.MasterName))
		conn.Close()
		if err == nil && len(r) == 2 {
			return net.JoinHostPort(r[0], r[1]), nil
		}
		errs = append(errs, err)
	}
	return "", errors.Join(errs...)
}

// confirmingPublisher LPUSHes batches to the current master and WAITs for
// the replica after each; a batch that failed is re-sent to the master
// the sentinels name next (a task may then be queued twice: ids count
// once).
type confirmingPublisher struct {
	c         *sentineltest.Cluster
	queue     string
	conn      redigo.Conn
	mu        sync.Mutex
	first     string          // the first master: the only one a kill can take writes with
	addr      string          // where conn goes
	confirmed map[string]bool // id -> safe: WAIT 1 saw the replica have it, or sent after the failover
	atRisk    map[string]bool // id -> sent to the first master, not confirmed by WAIT
	published map[string]bool
	errors    int
}

func (p *confirmingPublisher) publishBatch(ids []string, raws [][]byte) {
	for {
		if p.conn == nil || p.conn.Err() != nil {
			addr, err := masterOf(p.c)
			if err == nil {
				p.conn, err = redigo.Dial("tcp", addr, redigo.DialPassword(sentineltest.MasterPassword),
					redigo.DialConnectTimeout(time.Second), redigo.DialReadTimeout(5*time.Second))
			}
			if p.first == "" {
				p.first = addr
			}
			p.addr = addr
			if err != nil {
				p.errors++
				time.Sleep(100 * time.Millisecond)
				continue
			}
		}
		// After the failover the new master has no replica (the old one
		// is dead) and no further failover happens: no WAIT there.
		onFirst := p.addr == p.first
		for _, raw := range raws {
			_ = p.conn.Send("LPUSH", p.queue, raw)
		}
		if onFirst {
			_ = p.conn.Send("WAIT", 1, 1000)
		}
		err := p.conn.Flush()
		acked := 1
		for range raws {
			if _, e := p.conn.Receive(); e != nil && err == nil {
				err = e
			}
		}
		if err == nil && onFirst {
			acked, err = redigo.Int(p.conn.Receive())
		}
		p.mu.Lock()
		for _, id := range ids {
			p.published[id] = true
			if err == nil && acked >= 1 {
				p.confirmed[id] = true
				delete(p.atRisk, id)
			} else if onFirst && !p.confirmed[id] {
				p.atRisk[id] = true
			}
		}
		p.mu.Unlock()
		if err == nil {
			return
		}
		p.errors++
		p.conn.Close()
		p.conn = nil
	}
}

// resultStates reads the result state of ids on the current master (db 1).
func resultStates(t *testing.T, c *sentineltest.Cluster, ids []string) map[string]string {
	t.Helper()
	conn := c.Conn(c.Master(), 1)
	defer conn.Close()
	out := map[string]string{}
	for i, st := range resultStatesOn(t, conn, ids) {
		if st != "" && st != "?" {
			out[ids[i]] = st
		}
	}
	return out
}

func TestSentinelChaos(t *testing.T) {
	const n, batch = 2000, 20
	c := sentineltest.Start(t)
	workerBinary(t)
	queue := "sentinel_chaos"
	ws := &chaosWorkers{t: t, env: append(sentinelWorkerEnv(c), "OMICS_TEST_QUEUE="+queue),
		args: []string{"--diagnostic-tasks", "-Q", queue, "-c", "8",
			"--visibility-timeout", "5", "--restore-interval", "1", "--result-expires", "3600",
			"--without-mingle", "--shutdown-timeout", "5", "-l", "info"}}
	ws.start(0)

	ids := make([]string, n)
	raws := make([][]byte, n)
	for i := range ids {
		ids[i] = pyfmt.NewUUID4().String()
		var err error
		raws[i], err = protocol.EncodeTask(&protocol.TaskMessage{ID: ids[i], Task: "diag.progress",
			Kwargs: map[string]any{"steps": 1, "delay": 0.02}}, protocol.PublishOptions{Queue: queue})
		if err != nil {
			t.Fatal(err)
		}
	}
	pub := &confirmingPublisher{c: c, queue: queue, confirmed: map[string]bool{}, atRisk: map[string]bool{}, published: map[string]bool{}}
	pubDone := make(chan struct{})
	killAt := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(pubDone)
		for i := 0; i < n; i += batch {
			if i == n*2/5 {
				close(killAt)
			}
			pub.publishBatch(ids[i:i+batch], raws[i:i+batch])
			time.Sleep(25 * time.Millisecond)
		}
	}()
	<-killAt
	old := c.Master()
	old.Kill()
	killed := time.Now()
	now := c.WaitSwitch(old, 60*time.Second)
	t.Logf("master %s SIGKILLed at %s; %s promoted after %s", old.Addr(), killed.Sub(began).Round(time.Millisecond),
		now.Addr(), time.Since(killed).Round(time.Millisecond))
	<-pubDone

	// Wait for every published task, or for no progress for 30 s (the
	// lost ones never come).
	var states map[string]string
	last, lastChange := -1, time.Now()
	for {
		states = resultStates(t, c, ids)
		ok := 0
		for _, s := range states {
			if s == protocol.StateSuccess {
				ok++
			}
		}
		if ok == n {
			break
		}
		if ok != last {
			last, lastChange = ok, time.Now()
		}
		if time.Since(lastChange) > 30*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	execs := ws.executions("diag.progress")
	var lostConfirmed, lostUnconfirmed, dup []string
	for _, id := range ids {
		switch {
		case execs[id] == 0 && pub.confirmed[id]:
			lostConfirmed = append(lostConfirmed, id)
		case execs[id] == 0:
			lostUnconfirmed = append(lostUnconfirmed, id)
		case execs[id] > 1:
			dup = append(dup, id)
		}
	}
	noResult := 0
	for id, k := range execs {
		if k > 0 && states[id] != protocol.StateSuccess && pub.published[id] {
			noResult++
		}
	}
	t.Logf("sentinel chaos: %d tasks published (%d publish retries), %d safe (WAIT 1 confirmed, or sent to the new master), "+
		"%d at risk (sent to the killed master, unconfirmed), %d executed, %d executed twice (redelivered after the failover), "+
		"lost by asynchronous replication (at risk, never delivered): %d, lost through the worker: %d, "+
		"executed without a final result: %d, elapsed %s",
		len(pub.published), pub.errors, len(pub.confirmed), len(pub.atRisk), len(execs), len(dup),
		len(lostUnconfirmed), len(lostConfirmed), noResult, time.Since(began).Round(time.Millisecond))
	if len(lostConfirmed) > 0 {
		t.Errorf("%d tasks the replica had confirmed were never executed (e.g. %s)", len(lostConfirmed), lostConfirmed[0])
	}
	if noResult > 0 {
		t.Errorf("%d executed tasks have no SUCCESS result on the new master", noResult)
	}
	p := ws.procs[0]
	if !strings.Contains(p.out.String(), "master switched") {
		t.Errorf("the worker did not log following +switch-master")
	}
	select {
	case <-p.done:
		t.Fatalf("the worker exited: %s", p.out.String())
	default:
	}
	// Clean end on the new master: nothing left queued or unacked.
	conn := c.Conn(now, 0)
	defer conn.Close()
	for _, key := range []string{queue, "unacked"} {
		if k, _ := redigo.Int(conn.Do("EXISTS", key)); k != 0 && len(lostUnconfirmed)+len(lostConfirmed) == 0 {
			t.Errorf("%s left on the new master", key)
		}
	}
}

// TestSentinelPythonClient: celery's own client publishes to the Go
// worker through sentinel:// and reads the results through the sentinel
// result backend, and `celery inspect ping` reaches the worker.
func TestSentinelPythonClient(t *testing.T) {
	requireInterop(t)
	sentinelPythonClient(t, sentineltest.Start(t), "sentinel_py")
}

// sentinelClientScript sends 20 diag.add through sentinel://, reads the
// results through the sentinel result backend and pings the worker.
const sentinelClientScript = `
import json, os, sys
from celery import Celery
opts = json.loads(os.environ["CELERY_BROKER_TRANSPORT_OPTIONS"])
app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.broker_transport_options = opts
app.conf.result_backend_transport_options = opts
rs = [app.send_task("diag.add", args=[i, 1], queue=sys.argv[1]) for i in range(20)]
got = [r.get(timeout=60) for r in rs]
assert got == [i + 1 for i in range(20)], got
pong = None
for _ in range(3):  # pub/sub keeps nothing while a subscriber reconnects (kombu too)
    pong = app.control.inspect(destination=[sys.argv[2]], timeout=5).ping()
    if pong:
        break
print(json.dumps({"results": len(got), "ping": pong}))
`

func sentinelPythonClient(t *testing.T, c *sentineltest.Cluster, queue string) {
	host, _ := os.Hostname()
	type run struct {
		version string
		py      []string
	}
	runs := []run{{"5.2", []string{pythonBin}}}
	if _, err := os.Stat("/var/cache/omics-worker/celery55"); err == nil {
		runs = append(runs, run{"5.5", celery55(t)})
	}
	for i, r := range runs {
		version, py := r.version, r.py
		// The last client runs twice: before and after a SIGKILL of the
		// master, so the worker's fetch, result, pidbox and reply paths
		// are proven on the promoted replica with the real client.
		failover := i == len(runs)-1
		t.Run(version, func(t *testing.T) {
			env := sentinelWorkerEnv(c)
			wenv := append(sentinelWorkerEnv(c), "OMICS_TEST_QUEUE="+queue)
			if version == "5.2" {
				// kombu 5.2's SentinelChannel never formats the default
				// fanout prefix "/{db}.": its pidbox channel is literally
				// "/{db}.celery.pidbox" (docs/redis.md); the worker is
				// told so with the same transport option.
				wenv = append(wenv, `CELERY_BROKER_TRANSPORT_OPTIONS={"master_name": "`+sentineltest.MasterName+
					`", "sentinel_kwargs": {"password": "`+sentineltest.SentinelPassword+`"}, "fanout_prefix": "/{db}."}`)
			}
			node := "sentinel" + strings.ReplaceAll(version, ".", "") + "@" + host
			p := startProc(t, "go worker", interopDir(t), wenv, workerBinary(t),
				"worker", "--diagnostic-tasks", "-Q", queue, "-n", node, "-l", "info")
			p.waitFor(t, "worker ready", 1, 30*time.Second)
			defer p.stop(syscall.SIGTERM, 15*time.Second)
			checkSentinelClient(t, version, py, env, queue, node)
			if failover {
				old := c.Master()
				old.Kill()
				now := c.WaitSwitch(old, 60*time.Second)
				p.waitFor(t, "master switched", 2, 30*time.Second) // broker and backend resolvers
				t.Logf("master %s killed, %s promoted; the client runs again", old.Addr(), now.Addr())
				checkSentinelClient(t, version, py, env, queue, node)
			}
		})
	}
}

func checkSentinelClient(t *testing.T, version string, py, env []string, queue, node string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py[0], append(py[1:], "-c", sentinelClientScript, queue, node)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("celery %s client: %v\n%s", version, err, out)
	}
	s := string(out[strings.LastIndex(string(out), "{\"results\""):])
	t.Logf("celery %s: %s", version, strings.TrimSpace(s))
	if !strings.Contains(s, `"results": 20`) {
		t.Fatalf("celery %s: %s", version, out)
	}
	if !strings.Contains(s, node) {
		t.Errorf("celery %s inspect ping did not reach %s: %s", version, node, s)
	}
}
