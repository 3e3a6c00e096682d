package main

// Canvas interop (issue 11 #3): the real Celery client (5.2.6 from
// /usr/bin/python3 and 5.5.2 from the trixie root of scripts/celery55.sh)
// sends link, link_error, chain, group and chord canvases to the Go
// worker, alone and next to a Python worker. Redis databases 10 (broker)
// and 11 (results), used by these tests only.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

var canvasDBs = controlDBs // a top-level test: never at the same time as the control matrix

// canvasPython is the interpreter of one Celery version: "5.2" is the
// system python3, "5.5" runs python3 inside the celery55 root.
func canvasPython(t *testing.T, version string) (bin string, pre []string) {
	t.Helper()
	switch version {
	case "5.2":
		return pythonBin, nil
	case "5.5":
		script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "celery55.sh"))
		if err != nil {
			t.Fatal(err)
		}
		root := os.Getenv("OMICS_CELERY55_ROOT")
		if root == "" {
			root = "/var/cache/omics-worker/celery55"
		}
		if _, err := os.Stat(filepath.Join(root, ".omics-complete")); err != nil {
			t.Fatalf("the celery 5.5 root is missing (%v)\nhint: run `scripts/celery55.sh ensure` (needs root)", err)
		}
		return script, []string{"python3"}
	}
	t.Fatalf("unknown celery version %q", version)
	return "", nil
}

var canvasVersions = []string{"5.2", "5.5"}

// runCanvasClient runs one canvas_client.py scenario with the given Celery.
func runCanvasClient(t *testing.T, version, queue, scenario string) map[string]any {
	t.Helper()
	bin, pre := canvasPython(t, version)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(pre, "canvas/canvas_client.py", scenario)...)
	cmd.Dir = interopDir(t)
	cmd.Env = append(os.Environ(), canvasDBs.env(queue)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("canvas_client.py %s (celery %s): %v\nstdout:\n%s\nstderr:\n%s", scenario, version, err, out, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("canvas_client.py %s: bad output %q: %v", scenario, out, err)
	}
	if !strings.HasPrefix(res["celery"].(string), version) {
		t.Fatalf("scenario ran with celery %v, want %s", res["celery"], version)
	}
	return res
}

// startCanvasPyWorker starts a Python worker of the given Celery version
// consuming queues, with task_default_queue = defQueue.
func startCanvasPyWorker(t *testing.T, version, defQueue, queues string) *proc {
	t.Helper()
	bin, pre := canvasPython(t, version)
	args := append(pre, "-m", "celery", "-A", "omics_app", "worker", "-P", "solo", "-Q", queues,
		"-n", "py-canvas@%h", "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "info")
	p := startProc(t, "python worker "+version, interopDir(t), canvasDBs.env(defQueue), bin, args...)
	p.waitFor(t, " ready.", 1, 90*time.Second)
	return p
}

func canvasQueues(t *testing.T, tag string) string {
	q := uniqueQueue(t, tag)
	t.Cleanup(func() {
		for _, s := range []string{"_other", "_py"} {
			n := q + s
			testenv.RedisDel(canvasDBs.broker, "_kombu.binding."+n, n, n+"\x06\x163", n+"\x06\x166", n+"\x06\x169")
		}
		testenv.RedisDel(canvasDBs.broker, "_kombu.binding."+q, q, q+"\x06\x163", q+"\x06\x166", q+"\x06\x169")
	})
	return q
}

// TestCanvasGoWorker: every canvas scenario against the Go worker alone
// (plus a Python worker for the errback only Python registers).
func TestCanvasGoWorker(t *testing.T) {
	requireInterop(t)
	scenarios := []string{"link", "link_other_queue", "link_immutable", "link_error", "chain3", "chain10",
		"chain_fail", "chord5", "chord100", "chord_fail", "chain_in_chord", "group_of_chains",
		"chord_chain_body", "retry"}
	for _, v := range canvasVersions {
		t.Run("celery"+v, func(t *testing.T) {
			q := canvasQueues(t, "canvas")
			gw := startCanvasGoWorker(t, q, q+","+q+"_other")
			for _, sc := range scenarios {
				t.Run(sc, func(t *testing.T) {
					res := runCanvasClient(t, v, q, sc)
					if res["ok"] != true {
						t.Fatalf("%s (celery %s): %v\n--- go worker ---\n%s", sc, v, res, gw.out.String())
					}
				})
			}
			t.Run("link_error_python", func(t *testing.T) {
				startCanvasPyWorker(t, v, q, q+"_py")
				res := runCanvasClient(t, v, q, "link_error_python")
				if res["ok"] != true {
					t.Fatalf("link_error_python (celery %s): %v", v, res)
				}
			})
		})
	}
}

// TestCanvasMixedFleet: a chord whose header parts run partly on the Go
// worker and partly on a Python worker completes with one body run.
func TestCanvasMixedFleet(t *testing.T) {
	requireInterop(t)
	for _, v := range canvasVersions {
		t.Run("celery"+v, func(t *testing.T) {
			q := canvasQueues(t, "canvasmix")
			gw := startCanvasGoWorker(t, q, q)
			pw := startCanvasPyWorker(t, v, q, q+"_py")
			for i := 0; i < 3; i++ {
				res := runCanvasClient(t, v, q, "mixed_chord")
				if res["ok"] != true {
					t.Fatalf("mixed_chord (celery %s): %v", v, res)
				}
				body := res["body"].(string)
				runs := strings.Count(gw.out.String(), "diag.xsum["+body+"] succeeded") +
					strings.Count(pw.out.String(), "diag.xsum["+body+"] succeeded")
				if runs != 1 {
					t.Fatalf("chord body %s ran %d times\n--- go ---\n%s\n--- python ---\n%s", body, runs, gw.out.String(), pw.out.String())
				}
			}
		})
	}
}

func startCanvasGoWorker(t *testing.T, defQueue, queues string) *proc {
	t.Helper()
	args := []string{"worker", "--diagnostic-tasks", "-Q", queues, "-n", "omics-canvas@%h",
		"--result-expires", "600", "-l", "info", "-c", "4"}
	p := startProc(t, "go worker", interopDir(t), canvasDBs.env(defQueue), workerBinary(t), args...)
	p.waitFor(t, "worker ready", 1, 20*time.Second)
	return p
}
