package loadgen

// Tests of the pre-filled mode's process control on real process trees
// (sh with two sleeping children) and, for the publish-error path, the real
// Redis (database testenv.RedisDBLoadgen). The full run against the real Go
// worker is cmd/omics-worker's TestLoadgenPrefill.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/internal/testenv"
)

// startTree starts sh with two sleeping children and returns its pid once
// the children exist; the tree is killed (continued first) at cleanup.
func startTree(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sh", "-c", "sleep 300 & sleep 300 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		for _, p := range treePIDs(pid) {
			_ = syscall.Kill(p, syscall.SIGCONT)
			if p != pid {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
	})
	waitUntil(t, "sh's two children", func() bool { return len(treePIDs(pid)) == 3 })
	return pid
}

// waitUntil polls cond for up to a minute (a wait, not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// treeState returns how many processes of the tree are stopped and running.
func treeState(pid int) (stopped, running int) {
	for _, p := range treePIDs(pid) {
		if threadState(p, p) == 'T' {
			stopped++
		} else {
			running++
		}
	}
	return stopped, running
}

func requireResumed(t *testing.T, pid int) {
	t.Helper()
	waitUntil(t, "the tree to run again", func() bool {
		stopped, running := treeState(pid)
		return stopped == 0 && running == 3
	})
}

func TestStopTree(t *testing.T) {
	pid := startTree(t)
	tree, err := stopTree(pid, nil)
	if err != nil {
		t.Fatal(err)
	}
	// stopTree returns once every thread is stopped: no waiting here.
	if stopped, running := treeState(pid); stopped != 3 || running != 0 {
		tree.resume()
		t.Fatalf("after stopTree: %d stopped, %d running; want 3, 0", stopped, running)
	}
	tree.resume()
	tree.resume() // idempotent
	requireResumed(t, pid)
}

func TestStopTreeNoProcess(t *testing.T) {
	for _, pid := range []int{0, -1, 1 << 30} {
		if tree, err := stopTree(pid, nil); err == nil {
			tree.resume()
			t.Errorf("stopTree(%d): no error", pid)
		}
	}
}

// SIGHUP (or SIGINT, SIGTERM) while the tree is stopped continues it before
// the run is cancelled.
func TestStopTreeSignal(t *testing.T) {
	pid := startTree(t)
	got := make(chan os.Signal, 1)
	tree, err := stopTree(pid, func(s os.Signal) {
		// The tree is already continued when this runs.
		if stopped, _ := treeState(pid); stopped == 3 {
			t.Errorf("onSignal ran before the tree was continued")
		}
		got <- s
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tree.resume()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != syscall.SIGHUP {
		t.Errorf("onSignal(%v), want SIGHUP", s)
	}
	requireResumed(t, pid)
}

func TestPrefillConfig(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Prefill: true}, "pid"},
		{Config{Prefill: true, WatchPID: 1, Rate: 10}, "rate"},
		{Config{Prefill: true, WatchPID: 1}, ""},
	}
	for _, tt := range tests {
		_, err := tt.cfg.withDefaults()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("withDefaults(%+v) = %v; want an error with %q", tt.cfg, err, tt.want)
		}
	}
}

// A publish that fails while the tree is stopped (LPUSH onto a key of the
// wrong type) returns the error and leaves the tree running.
func TestPrefillResumesOnPublishError(t *testing.T) {
	url := testenv.NeedRedis(t, testenv.RedisDBLoadgen)
	pid := startTree(t)
	queue := fmt.Sprintf("lg_prefill_err_%d_%d", os.Getpid(), time.Now().UnixNano())
	c, err := redigo.Dial("tcp", testenv.RedisAddr, redigo.DialDatabase(testenv.RedisDBLoadgen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Do("SET", queue, "not a list", "EX", 600); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = c.Do("DEL", queue) }()
	rep, err := Run(context.Background(), Config{BrokerURL: url, BackendURL: url, Queue: queue,
		N: 10, WatchPID: pid, Prefill: true, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Errorf("Run: report %+v, err %v; want a WRONGTYPE publish error", rep, err)
	}
	requireResumed(t, pid)
}
