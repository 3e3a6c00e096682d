package main

// Remote-control interop tests: the real `celery` CLI inspects and
// controls the omics-worker binary and a Python worker started in the same
// test, over the real Redis, once per Celery version (celery 5.2.6 and
// 5.5.2, see pyruntime_test.go); CLI, Python worker and client are of that
// version. Redis databases testenv.RedisDBControl* for 5.2, testenv.RedisDBControl55 (broker and results)
// for 5.5 (the versions run in parallel; one pair each keeps their
// broadcasts and mingle apart). Helpers: testdata/interop/ (omics_app.py)
// and testdata/interop/control/ctl.py.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

var controlDBs = redisDBs{testenv.RedisDBControl, testenv.RedisDBControlResults}

// controlDBsOf is the database pair of the version's control tests.
func controlDBsOf(py pyRuntime) redisDBs {
	if py.Version == "5.2" {
		return controlDBs
	}
	return redisDBs{testenv.RedisDBControl55, testenv.RedisDBControl55}
}

// verTag is the version without its dot ("55"), for node and queue names.
func verTag(py pyRuntime) string { return strings.ReplaceAll(py.Version, ".", "") }

// celeryCLI runs `python3 -m celery -A omics_app args...` of the runtime
// py and returns its combined output and exit code.
func celeryCLI(t *testing.T, py pyRuntime, queue string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := py.CommandContext(ctx, append([]string{"-m", "celery", "-A", "omics_app"}, args...)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), controlDBsOf(py).env(queue)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("celery %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// celeryJSON runs an inspect/control command with -j and returns the
// replies by node (control's list of {node: reply} is merged).
//
// With -d the CLI stops collecting as soon as every named node replied
// (kombu limits the replies to the number of destinations), so the reply
// timeout is a generous deadline for a loaded machine, not a wait; without
// -d it waits the whole timeout, so it is kept short — name the nodes
// (toBoth) whenever a test needs every reply.
func celeryJSON(t *testing.T, py pyRuntime, queue string, args ...string) map[string]any {
	t.Helper()
	switch {
	case slices.Contains(args, "-t"):
	case slices.Contains(args, "-d"):
		args = append(args, "-t", "20")
	default:
		args = append(args, "-t", "2")
	}
	out, code := celeryCLI(t, py, queue, append(args, "-j")...)
	if code != 0 {
		t.Fatalf("celery %v: exit %d:\n%s", args, code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	var m map[string]any
	if json.Unmarshal([]byte(last), &m) == nil {
		return m
	}
	var l []map[string]any
	if err := json.Unmarshal([]byte(last), &l); err != nil {
		t.Fatalf("celery %v: not JSON: %s", args, out)
	}
	m = map[string]any{}
	for _, e := range l {
		for k, v := range e {
			m[k] = v
		}
	}
	return m
}

// ctlPy runs testdata/interop/control/ctl.py.
func ctlPy(t *testing.T, py pyRuntime, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := py.CommandContext(ctx, append([]string{filepath.Join("control", "ctl.py")}, args...)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), controlDBsOf(py).env("unused")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ctl.py %v: %v\n%s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

type taskState struct {
	State  string `json:"state"`
	Result string `json:"result"`
}

func waitState(t *testing.T, py pyRuntime, id string, timeout time.Duration) taskState {
	t.Helper()
	var s taskState
	if err := json.Unmarshal([]byte(ctlPy(t, py, "state", id, fmt.Sprint(timeout.Seconds()))), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func nodeName(t *testing.T, prefix string) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%s%d@%s", prefix, os.Getpid(), h)
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startPyControlWorker(t *testing.T, py pyRuntime, queue, node string) *proc {
	t.Helper()
	p := startPyProc(t, py, "python worker", interopDir(t), controlDBsOf(py).env(queue),
		"-m", "celery", "-A", "omics_app", "worker", "-P", "solo", "-Q", queue, "-n", node,
		"--without-gossip", "-l", "info")
	p.waitFor(t, " ready.", 1, 60*time.Second)
	return p
}

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func okText(t *testing.T, replies map[string]any, node string) string {
	t.Helper()
	r, _ := replies[node].(map[string]any)
	s, ok := r["ok"].(string)
	if !ok {
		t.Fatalf("%s: reply %v is not ok", node, replies[node])
	}
	return s
}

// TestControlInterop drives one Go worker and one Python worker with the
// celery CLI: inspect, status, revoke (before receipt and terminate),
// add/cancel consumer, enable_events + events --dump, rate/time limits,
// purge while running, /metrics, and finally a remote shutdown.
func TestControlInterop(t *testing.T) {
	forEachCelery(t, true, testControlInterop)
}

func testControlInterop(t *testing.T, py pyRuntime) {
	qgo, qpy := uniqueQueue(t, "ctlgo"), uniqueQueue(t, "ctlpy")
	goNode, pyNode := nodeName(t, "goctl"+verTag(py)), nodeName(t, "pyctl"+verTag(py))
	maddr := freeAddr(t)
	startPyControlWorker(t, py, qpy, pyNode)
	gw := startGoWorker(t, controlDBsOf(py), qgo, "-c", "2", "-n", goNode, "--metrics-addr", maddr)
	// toBoth names both workers as destinations: the CLI returns as soon
	// as both replied, with a generous deadline (see celeryJSON).
	toBoth := func(args ...string) []string { return append(args, "-d", goNode+","+pyNode) }

	t.Run("ping and status", func(t *testing.T) {
		// A true broadcast (no destination): waits the whole timeout.
		r := celeryJSON(t, py, qgo, "inspect", "ping", "-t", "8")
		for _, n := range []string{goNode, pyNode} {
			if okText(t, r, n) != "pong" {
				t.Errorf("%s: %v", n, r[n])
			}
		}
		r = celeryJSON(t, py, qgo, "inspect", "ping", "-d", goNode)
		if len(r) != 1 || r[goNode] == nil {
			t.Errorf("-d %s: %v", goNode, r)
		}
		out, code := celeryCLI(t, py, qgo, toBoth("status", "-t", "20")...)
		if code != 0 || !strings.Contains(out, "->  "+goNode+": OK") || !strings.Contains(out, "->  "+pyNode+": OK") {
			t.Errorf("status (exit %d):\n%s", code, out)
		}
	})

	t.Run("stats shape like python", func(t *testing.T) {
		r := celeryJSON(t, py, qgo, toBoth("inspect", "stats")...)
		g, p := r[goNode].(map[string]any), r[pyNode].(map[string]any)
		for _, k := range keysOf(p) {
			if _, ok := g[k]; !ok {
				t.Errorf("go stats lacks %q (python has it)", k)
			}
		}
		if gb, pb := keysOf(g["broker"]), keysOf(p["broker"]); !slices.Equal(gb, pb) {
			t.Errorf("broker keys differ:\n go %v\n py %v", gb, pb)
		}
		if gr, pr := keysOf(g["rusage"]), keysOf(p["rusage"]); !slices.Equal(gr, pr) {
			t.Errorf("rusage keys differ:\n go %v\n py %v", gr, pr)
		}
		if _, ok := g["clock"].(string); !ok {
			t.Errorf("clock must be a string: %v", g["clock"])
		}
		if g["pool"].(map[string]any)["max-concurrency"] != 2.0 {
			t.Errorf("pool %v", g["pool"])
		}
	})

	t.Run("inspect commands parse", func(t *testing.T) {
		for _, cmd := range [][]string{{"registered"}, {"active_queues"}, {"revoked"}, {"active"}, {"reserved"},
			{"scheduled"}, {"conf"}, {"report"}, {"query_task", "nope"}, {"clock"}} {
			r := celeryJSON(t, py, qgo, toBoth(append([]string{"inspect"}, cmd...)...)...)
			for _, n := range []string{goNode, pyNode} {
				if m, ok := r[n].(map[string]any); ok && m["error"] != nil {
					t.Errorf("inspect %v on %s: %v", cmd, n, m)
				}
				if _, ok := r[n]; !ok {
					t.Errorf("inspect %v: no reply from %s", cmd, n)
				}
			}
		}
		r := celeryJSON(t, py, qgo, toBoth("inspect", "active_queues")...)
		gq, pq := r[goNode].([]any), r[pyNode].([]any)
		if len(gq) != 1 || len(pq) != 1 {
			t.Fatalf("active_queues: %v", r)
		}
		if gk, pk := keysOf(gq[0]), keysOf(pq[0]); !slices.Equal(gk, pk) {
			t.Errorf("active_queues keys differ:\n go %v\n py %v", gk, pk)
		}
		if gk, pk := keysOf(gq[0].(map[string]any)["exchange"]), keysOf(pq[0].(map[string]any)["exchange"]); !slices.Equal(gk, pk) {
			t.Errorf("exchange keys differ:\n go %v\n py %v", gk, pk)
		}
		reg := celeryJSON(t, py, qgo, toBoth("inspect", "registered")...)
		for _, n := range []string{goNode, pyNode} {
			if l, _ := reg[n].([]any); !slices.Contains(l, any("diag.sleep")) {
				t.Errorf("%s registered: %v", n, reg[n])
			}
		}
		// Human output of the CLI for our worker, as for Python's.
		out, code := celeryCLI(t, py, qgo, "inspect", "registered", "-d", goNode)
		if code != 0 || !strings.Contains(out, "* diag.sleep") {
			t.Errorf("registered (exit %d):\n%s", code, out)
		}
	})

	t.Run("revoke before receipt", func(t *testing.T) {
		goID, pyID := "rv-go-"+uniqueQueue(t, "id"), "rv-py-"+uniqueQueue(t, "id")
		r := celeryJSON(t, py, qgo, toBoth("control", "revoke", goID, pyID)...)
		// celery 5.2.6: "tasks a, b flagged as revoked"; celery 5.5.2
		// formats the Python set: "tasks {'a', 'b'} flagged as revoked"
		// (Python's set order varies). omics-worker cannot know the
		// client's version and keeps the 5.2 text (docs/protocol.md).
		idsOf := func(s string, setRepr bool) []string {
			s = strings.TrimSuffix(strings.TrimPrefix(s, "tasks "), " flagged as revoked")
			if setRepr {
				if !strings.HasPrefix(s, "{'") || !strings.HasSuffix(s, "'}") {
					return nil
				}
				s = strings.ReplaceAll(strings.Trim(s, "{}"), "'", "")
			}
			l := strings.Split(s, ", ")
			sort.Strings(l)
			return l
		}
		want := []string{goID, pyID}
		sort.Strings(want)
		g, p := idsOf(okText(t, r, goNode), false), idsOf(okText(t, r, pyNode), py.AtLeast("5.5"))
		if !slices.Equal(g, want) || !slices.Equal(p, want) {
			t.Errorf("revoke replies: %v", r)
		}
		ctlPy(t, py, "send", qgo, "diag.noop", "[]", goID)
		ctlPy(t, py, "send", qpy, "diag.noop", "[]", pyID)
		for _, id := range []string{goID, pyID} {
			if s := waitState(t, py, id, 20*time.Second); s.State != "REVOKED" {
				t.Errorf("%s: %+v, want REVOKED", id, s)
			}
		}
		rv := celeryJSON(t, py, qgo, "inspect", "revoked", "-d", goNode)
		if l, _ := rv[goNode].([]any); !slices.Contains(l, any(goID)) {
			t.Errorf("revoked: %v", rv)
		}
	})

	t.Run("terminate running task", func(t *testing.T) {
		id := ctlPy(t, py, "send", qgo, "diag.sleep", "[30]")
		deadline := time.Now().Add(20 * time.Second)
		for {
			a := celeryJSON(t, py, qgo, "inspect", "active", "-d", goNode)
			l, _ := a[goNode].([]any)
			if len(l) == 1 && l[0].(map[string]any)["id"] == id {
				info := l[0].(map[string]any)
				for _, k := range []string{"id", "name", "args", "kwargs", "type", "hostname", "time_start", "acknowledged", "delivery_info", "worker_pid"} {
					if _, ok := info[k]; !ok {
						t.Errorf("request info lacks %q: %v", k, info)
					}
				}
				q := celeryJSON(t, py, qgo, "inspect", "query_task", id, "-d", goNode)
				if st, _ := q[goNode].(map[string]any)[id].([]any); len(st) != 2 || st[0] != "active" {
					t.Errorf("query_task: %v", q)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("task %s never active: %v", id, a)
			}
			time.Sleep(100 * time.Millisecond)
		}
		r := celeryJSON(t, py, qgo, toBoth("control", "terminate", "TERM", id)...)
		if okText(t, r, goNode) != "terminate: "+id || okText(t, r, pyNode) != "terminate: tasks unknown" {
			t.Errorf("terminate replies: %v", r)
		}
		s := waitState(t, py, id, 20*time.Second)
		if s.State != "REVOKED" || !strings.Contains(s.Result, "terminated") {
			t.Errorf("after terminate: %+v", s)
		}
	})

	t.Run("add and cancel consumer", func(t *testing.T) {
		extra := uniqueQueue(t, "ctlextra")
		r := celeryJSON(t, py, qgo, "control", "add_consumer", extra, "-d", goNode)
		if okText(t, r, goNode) != "add consumer "+extra {
			t.Errorf("add_consumer: %v", r)
		}
		id := ctlPy(t, py, "send", extra, "diag.echo", `[1]`)
		if s := waitState(t, py, id, 20*time.Second); s.State != "SUCCESS" {
			t.Errorf("task on the added queue: %+v", s)
		}
		aq := celeryJSON(t, py, qgo, "inspect", "active_queues", "-d", goNode)
		if l, _ := aq[goNode].([]any); len(l) != 2 {
			t.Errorf("active_queues after add: %v", aq)
		}
		r = celeryJSON(t, py, qgo, "control", "cancel_consumer", extra, "-d", goNode)
		if okText(t, r, goNode) != "no longer consuming from "+extra {
			t.Errorf("cancel_consumer: %v", r)
		}
		aq = celeryJSON(t, py, qgo, "inspect", "active_queues", "-d", goNode)
		if l, _ := aq[goNode].([]any); len(l) != 1 {
			t.Errorf("active_queues after cancel: %v", aq)
		}
	})

	t.Run("enable_events and events dump", func(t *testing.T) {
		r := celeryJSON(t, py, qgo, "control", "enable_events", "-d", goNode)
		if okText(t, r, goNode) != "task events enabled" {
			t.Errorf("enable_events: %v", r)
		}
		dump := startPyProc(t, py, "events --dump", interopDir(t), controlDBsOf(py).env(qgo),
			"-m", "celery", "-A", "omics_app", "events", "--dump")
		// Generous deadlines: each wait ends as soon as the line is there.
		dump.waitFor(t, "starting capture", 1, 60*time.Second)
		dump.waitFor(t, goNode+" [", 1, 30*time.Second) // a heartbeat: the receiver is subscribed
		id := ctlPy(t, py, "send", qgo, "diag.echo", `["ev"]`)
		if s := waitState(t, py, id, 30*time.Second); s.State != "SUCCESS" {
			t.Fatalf("%+v", s)
		}
		for _, want := range []string{
			"task received: diag.echo(" + id + ") args=['ev']",
			"task started: diag.echo(" + id + ")",
			"task succeeded: diag.echo(" + id + ")",
			"sw_ident=omics-worker", // our heartbeat
		} {
			dump.waitFor(t, want, 1, 30*time.Second)
		}
		r = celeryJSON(t, py, qgo, "control", "disable_events", "-d", goNode)
		if okText(t, r, goNode) != "task events disabled" {
			t.Errorf("disable_events: %v", r)
		}
	})

	t.Run("rate and time limits like python", func(t *testing.T) {
		for _, tc := range []struct{ args []string }{
			{[]string{"rate_limit", "diag.noop", "50/m"}},
			{[]string{"rate_limit", "diag.noop", "0"}},
			{[]string{"rate_limit", "no.such.task", "1/s"}},
			{[]string{"rate_limit", "diag.noop", "x/s"}},
			{[]string{"time_limit", "diag.noop", "10", "20"}},
			{[]string{"time_limit", "no.such.task", "10"}},
			{[]string{"autoscale", "4", "1"}},
		} {
			r := celeryJSON(t, py, qgo, toBoth(append([]string{"control"}, tc.args...)...)...)
			g, _ := json.Marshal(r[goNode])
			p, _ := json.Marshal(r[pyNode])
			if !bytes.Equal(g, p) {
				t.Errorf("%v:\n go %s\n py %s", tc.args, g, p)
			}
		}
	})

	t.Run("purge while running", func(t *testing.T) {
		var running, queued []string
		// The two sleeps hold both slots (prefetch window 2) while four
		// noops are sent and purged; that takes several Python start-ups,
		// so the sleeps must outlast a loaded machine's seconds.
		for range 2 {
			running = append(running, ctlPy(t, py, "send", qgo, "diag.sleep", "[12]"))
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			a := celeryJSON(t, py, qgo, "inspect", "active", "-d", goNode)
			if l, _ := a[goNode].([]any); len(l) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sleep tasks not running: %v", a)
			}
			time.Sleep(100 * time.Millisecond)
		}
		for range 4 {
			queued = append(queued, ctlPy(t, py, "send", qgo, "diag.noop", "[]"))
		}
		out, code := celeryCLI(t, py, qgo, "purge", "-f", "-Q", qgo)
		if code != 0 || !strings.Contains(out, "Purged 4 messages from 1 known task queue") {
			t.Errorf("purge (exit %d): %s", code, out)
		}
		// The default-queue form (no -Q) finds nothing left.
		out, code = celeryCLI(t, py, qgo, "purge", "-f")
		if code != 0 || !strings.Contains(out, "No messages purged") {
			t.Errorf("purge -f (exit %d): %s", code, out)
		}
		for _, id := range running {
			if s := waitState(t, py, id, 30*time.Second); s.State != "SUCCESS" {
				t.Errorf("in-flight %s: %+v", id, s)
			}
		}
		for _, id := range queued {
			var s taskState
			_ = json.Unmarshal([]byte(ctlPy(t, py, "peek", id)), &s)
			if s.State != "PENDING" {
				t.Errorf("purged %s ran: %+v", id, s)
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		scrape := func() string {
			resp, err := http.Get("http://" + maddr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body)
		}
		wants := []string{
			`omics_worker_tasks_revoked_total{task="diag.noop"} 1`,  // revoked before receipt
			`omics_worker_tasks_revoked_total{task="diag.sleep"} 1`, // terminated
			`omics_worker_tasks_succeeded_total{task="diag.echo"} 2`,
			`omics_worker_tasks_succeeded_total{task="diag.sleep"} 2`,
			`omics_worker_task_runtime_seconds_count{task="diag.sleep"} 2`,
			`omics_worker_tasks_active 0`,
			fmt.Sprintf(`omics_worker_queue_length{priority="0",queue="%s"} 0`, qgo), // client_golang sorts label names
		}
		// A task's counters and the active gauge are updated after its
		// result is stored (what waitState saw), and the queue length is
		// sampled: scrape until they settle (generous deadline).
		m := scrape()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); m = scrape() {
			settled := true
			for _, want := range wants {
				settled = settled && strings.Contains(m, want+"\n")
			}
			if settled {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, want := range wants {
			if !strings.Contains(m, want+"\n") {
				t.Errorf("metrics lack %q", want)
			}
		}
		if !regexp.MustCompile(`(?m)^omics_worker_unacked_messages \d+$`).MatchString(m) {
			t.Error("no unacked gauge")
		}
		// The standard collectors of client_golang (issue 10 #7).
		for _, re := range []string{`(?m)^go_goroutines \d+$`, `(?m)^process_cpu_seconds_total [0-9.e+]+$`} {
			if !regexp.MustCompile(re).MatchString(m) {
				t.Errorf("metrics lack %s", re)
			}
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + maddr + p)
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("%s: %v %v", p, resp, err)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	})

	t.Run("remote shutdown", func(t *testing.T) {
		out, code := celeryCLI(t, py, qgo, "control", "shutdown", "-d", goNode)
		if code == 0 || !strings.Contains(out, "No nodes replied") {
			t.Errorf("shutdown must not be answered (exit %d): %s", code, out)
		}
		select {
		case <-gw.done:
		case <-time.After(30 * time.Second):
			t.Fatal("the Go worker did not stop after a remote shutdown")
		}
		if c := gw.cmd.ProcessState.ExitCode(); c != 0 {
			t.Errorf("exit code %d", c)
		}
		if !strings.Contains(gw.out.String(), "Got shutdown from remote") {
			t.Error("no shutdown log line")
		}
		r := celeryJSON(t, py, qgo, "inspect", "ping", "-t", "5")
		if _, ok := r[goNode]; ok || r[pyNode] == nil {
			t.Errorf("after shutdown: %v", r)
		}
	})
}

// TestControlInteropMingleStateDB: revokes reach a starting Go worker
// through mingle (from a Python worker), survive a restart through
// --statedb, and a Python worker started later learns them from the Go
// worker's hello reply.
func TestControlInteropMingleStateDB(t *testing.T) {
	forEachCelery(t, true, testControlInteropMingleStateDB)
}

func testControlInteropMingleStateDB(t *testing.T, rt pyRuntime) {
	qgo, qpy := uniqueQueue(t, "mglgo"), uniqueQueue(t, "mglpy")
	goNode, pyNode := nodeName(t, "gomgl"+verTag(rt)), nodeName(t, "pymgl"+verTag(rt))
	state := filepath.Join(t.TempDir(), "worker.state")
	py := startPyControlWorker(t, rt, qpy, pyNode)
	idX := "mingle-x-" + uniqueQueue(t, "id")
	celeryJSON(t, rt, qpy, "control", "revoke", idX, "-d", pyNode)

	g := startGoWorker(t, controlDBsOf(rt), qgo, "-n", goNode, "--statedb", state)
	g.waitFor(t, "mingle: sync with", 1, 30*time.Second)
	rv := celeryJSON(t, rt, qgo, "inspect", "revoked", "-d", goNode)
	if l, _ := rv[goNode].([]any); !slices.Contains(l, any(idX)) {
		t.Fatalf("mingle did not bring %s: %v", idX, rv)
	}
	idY := "mingle-y-" + uniqueQueue(t, "id")
	celeryJSON(t, rt, qgo, "control", "revoke", idY, "-d", goNode)
	g.stop(syscall.SIGTERM, 30*time.Second)

	// Restart without mingle: only the statedb can remember.
	g2 := startGoWorker(t, controlDBsOf(rt), qgo, "-n", goNode, "--statedb", state, "--without-mingle")
	rv = celeryJSON(t, rt, qgo, "inspect", "revoked", "-d", goNode)
	l, _ := rv[goNode].([]any)
	if !slices.Contains(l, any(idX)) || !slices.Contains(l, any(idY)) {
		t.Fatalf("after restart: %v", rv)
	}
	id := ctlPy(t, rt, "send", qgo, "diag.noop", "[]", idY)
	if s := waitState(t, rt, id, 20*time.Second); s.State != "REVOKED" {
		t.Errorf("%+v", s)
	}

	// A Python worker starting now syncs with the Go worker (our hello
	// reply must parse: float timestamps).
	py.stop(syscall.SIGTERM, 30*time.Second)
	py2 := startPyControlWorker(t, rt, qpy, pyNode)
	if !strings.Contains(py2.out.String(), "mingle: sync with") || strings.Contains(py2.out.String(), "failed") {
		t.Errorf("python mingle:\n%s", py2.out.String())
	}
	rv = celeryJSON(t, rt, qpy, "inspect", "revoked", "-d", pyNode)
	if l, _ := rv[pyNode].([]any); !slices.Contains(l, any(idY)) {
		t.Errorf("python did not learn %s from the Go worker: %v", idY, rv)
	}
	_ = g2
}
