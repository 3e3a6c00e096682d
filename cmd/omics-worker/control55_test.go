package main

// Remote-control interop with celery 5.5 (issue 11 #4): the celery 5.5.2
// CLI and client (scripts/celery55.sh: a Debian trixie root) inspect and
// control the Go worker and a Python 5.5 worker started in the same test;
// replies are compared field by field. Redis databases 2 (broker) and 3
// (results). The version-independent helpers are control_test.go's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var control55DBs = controlDBs // a top-level test: never at the same time as the control matrix

// celery55 is the command prefix that runs python3 inside the celery 5.5
// root.
func celery55(t *testing.T) []string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "celery55.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return []string{script, "python3"}
}

// require55 is requireInterop plus a usable celery 5.5 root.
func require55(t *testing.T) {
	t.Helper()
	requireInterop(t)
	py := celery55(t)
	out, err := exec.Command(py[0], append(py[1:], "-c", "import celery; print(celery.__version__)")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(out)), "5.5") {
		t.Fatalf("the celery 5.5 root is not usable (scripts/celery55.sh ensure; needs root): %v\n%s", err, out)
	}
}

func py55(t *testing.T, queue string, timeout time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	py := celery55(t)
	cmd := exec.CommandContext(ctx, py[0], append(py[1:], args...)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), control55DBs.env(queue)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("python3 %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return string(out) + stderr.String(), code
}

// celery55JSON runs `celery -A omics_app ARGS -j -d NODES -t 20` with the
// 5.5 CLI and returns the replies by node.
func celery55JSON(t *testing.T, nodes string, args ...string) map[string]any {
	t.Helper()
	full := append([]string{"-m", "celery", "-A", "omics_app"}, args...)
	full = append(full, "-j", "-d", nodes, "-t", "20")
	out, code := py55(t, "unused", 90*time.Second, full...)
	if code != 0 {
		t.Fatalf("celery %v: exit %d:\n%s", args, code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	m := map[string]any{}
	// Python's json writes inf (result_backend_max_retries) as Infinity.
	decode := func(line string, v any) bool {
		d := json.NewDecoder(strings.NewReader(strings.ReplaceAll(line, ": Infinity", ": 1e999")))
		d.UseNumber()
		return d.Decode(v) == nil
	}
	for _, line := range lines {
		var one map[string]any
		if decode(line, &one) {
			return one
		}
		var l []map[string]any
		if decode(line, &l) {
			for _, e := range l {
				for k, v := range e {
					m[k] = v
				}
			}
			return m
		}
	}
	t.Fatalf("celery %v: not JSON:\n%s", args, out)
	return nil
}

func stamps55(t *testing.T, args ...string) string {
	t.Helper()
	out, code := py55(t, "unused", 90*time.Second, append([]string{filepath.Join("control", "stamps.py")}, args...)...)
	if code != 0 {
		t.Fatalf("stamps.py %v: exit %d\n%s", args, code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

func state55(t *testing.T, id string) taskState {
	t.Helper()
	out, code := py55(t, "unused", 90*time.Second, filepath.Join("control", "ctl.py"), "state", id, "30")
	if code != 0 {
		t.Fatalf("ctl.py state: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var s taskState
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestControl55Interop(t *testing.T) {
	require55(t)
	qgo, qpy := uniqueQueue(t, "c55go"), uniqueQueue(t, "c55py")
	goNode, pyNode := nodeName(t, "goc55"), nodeName(t, "pyc55")
	py := celery55(t)
	pw := startProc(t, "python 5.5 worker", interopDir(t), control55DBs.env(qpy), py[0], append(py[1:],
		"-m", "celery", "-A", "omics_app", "worker", "-P", "solo", "-Q", qpy, "-n", pyNode,
		"--without-gossip", "-l", "info")...)
	pw.waitFor(t, " ready.", 1, 90*time.Second)
	startGoWorker(t, control55DBs, qgo, "-c", "2", "-n", goNode)
	both := goNode + "," + pyNode

	t.Run("every inspect command", func(t *testing.T) {
		for _, cmd := range [][]string{{"ping"}, {"clock"}, {"report"}, {"conf"}, {"conf", "true"}, {"stats"},
			{"active"}, {"reserved"}, {"scheduled"}, {"revoked"}, {"registered"}, {"active_queues"},
			{"query_task", "nope"}, {"memsample"}, {"memdump"}, {"objgraph"}} {
			r := celery55JSON(t, both, append([]string{"inspect"}, cmd...)...)
			g, gok := r[goNode]
			p, pok := r[pyNode]
			if !gok || !pok {
				t.Errorf("inspect %v: replies %v", cmd, r)
				continue
			}
			gm, _ := g.(map[string]any)
			pm, _ := p.(map[string]any)
			switch cmd[0] {
			case "memsample", "memdump", "objgraph":
				// Python-only introspection: the Go worker says so.
				if gm["error"] == nil {
					t.Errorf("inspect %v on go: %v", cmd, g)
				}
				continue
			}
			if gm != nil && gm["error"] != nil || pm != nil && pm["error"] != nil {
				t.Errorf("inspect %v: go %v py %v", cmd, g, p)
			}
			switch cmd[0] {
			case "ping", "active", "reserved", "scheduled", "query_task":
				gj, _ := json.Marshal(g)
				pj, _ := json.Marshal(p)
				if !bytes.Equal(gj, pj) {
					t.Errorf("inspect %v:\n go %s\n py %s", cmd, gj, pj)
				}
			case "stats":
				for _, k := range keysOf(p) {
					if _, ok := gm[k]; !ok {
						t.Errorf("go stats lacks %q", k)
					}
				}
			case "conf":
				if len(cmd) == 2 {
					var missing []string
					for _, k := range keysOf(p) {
						if _, ok := gm[k]; !ok {
							missing = append(missing, k)
						}
					}
					if len(missing) > 0 || len(gm) < 150 {
						t.Errorf("conf with_defaults: go has %d keys, lacks %v", len(gm), missing)
					}
				}
			case "active_queues":
				gq, _ := g.([]any)
				pq, _ := p.([]any)
				if len(gq) != 1 || len(pq) != 1 || !slices.Equal(keysOf(gq[0]), keysOf(pq[0])) {
					t.Errorf("active_queues:\n go %v\n py %v", g, p)
				}
			}
		}
	})

	t.Run("control replies equal python 5.5", func(t *testing.T) {
		for _, args := range [][]string{
			{"rate_limit", "diag.noop", "50/m"},
			{"rate_limit", "diag.noop", "0"},
			{"rate_limit", "no.such.task", "1/s"},
			{"time_limit", "diag.noop", "10", "20"},
			{"time_limit", "no.such.task", "10"},
			{"autoscale", "4", "1"},
			{"pool_restart"},
			{"terminate", "BOGUS", "nope"},
			{"revoke_by_stamped_headers", "mtask_id=c55-none", "tag=a=b"},
			{"heartbeat"},
			{"election"},
		} {
			r := celery55JSON(t, both, append([]string{"control"}, args...)...)
			g, _ := json.Marshal(r[goNode])
			p, _ := json.Marshal(r[pyNode])
			if !bytes.Equal(g, p) {
				t.Errorf("control %v:\n go %s\n py %s", args, g, p)
			}
		}
		// revoke: 5.5 prints the ids as a Python set; the Go worker keeps
		// the 5.2 wording (a pidbox request does not tell the client's
		// version). Both name the same ids.
		id := "c55-rv-" + uniqueQueue(t, "id")
		r := celery55JSON(t, both, "control", "revoke", id)
		if g, p := okText(t, r, goNode), okText(t, r, pyNode); g != "tasks "+id+" flagged as revoked" || p != "tasks {'"+id+"'} flagged as revoked" {
			t.Errorf("revoke: go %q py %q", g, p)
		}
	})

	t.Run("revoke by stamped headers", func(t *testing.T) {
		stamp := "c55-" + uniqueQueue(t, "st")
		// Before receipt: both workers discard a later message carrying it.
		r := celery55JSON(t, both, "control", "revoke_by_stamped_headers", "mtask_id="+stamp)
		want := "headers {'mtask_id': '" + stamp + "'} flagged as revoked, but not terminated"
		if okText(t, r, goNode) != want || okText(t, r, pyNode) != want {
			t.Errorf("replies %v, want %q", r, want)
		}
		for _, q := range []string{qgo, qpy} {
			id := stamps55(t, "send", q, "diag.noop", "[]", "mtask_id", stamp)
			if s := state55(t, id); s.State != "REVOKED" || !strings.Contains(s.Result, "revoked") {
				t.Errorf("stamped task on %s: %+v", q, s)
			}
		}
		// Running: terminate by stamp.
		running := "c55-run-" + uniqueQueue(t, "st")
		id := stamps55(t, "send", qgo, "diag.sleep", "[30]", "mtask_id", running)
		deadline := time.Now().Add(30 * time.Second)
		for {
			a := celery55JSON(t, goNode, "inspect", "active")
			if l, _ := a[goNode].([]any); len(l) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stamped sleep never active: %v", a)
			}
			time.Sleep(200 * time.Millisecond)
		}
		out := stamps55(t, "revoke", goNode, "mtask_id", running, "terminate")
		wantTerm := `"headers defaultdict(<class 'set'>, {'mtask_id': {'` + running + `'}}) revoked"`
		if !strings.Contains(out, wantTerm) {
			t.Errorf("terminate reply %s, want %s", out, wantTerm)
		}
		if s := state55(t, id); s.State != "REVOKED" || !strings.Contains(s.Result, "terminated") {
			t.Errorf("terminated stamped task: %+v", s)
		}
		// Nothing running with it on the Python worker.
		out = stamps55(t, "revoke", pyNode, "mtask_id", running, "terminate")
		if !strings.Contains(out, "were not terminated") {
			t.Errorf("python terminate reply %s", out)
		}
	})
}
