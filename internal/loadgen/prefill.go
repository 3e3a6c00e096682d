package loadgen

// Pre-filled mode (--prefill): the watched worker's process tree is held
// stopped (SIGSTOP) while every message is published, then continued
// (SIGCONT), so the worker drains a full queue with no producer competing
// for the cores, and tasks/s is measured from the resume to the last final
// state.
//
// A stopped worker must never be left behind: the tree is continued by
// Run's deferred resume (every return, error or panic), by the handler of
// SIGINT, SIGTERM and SIGHUP that is installed for as long as the tree is
// stopped (it continues the tree, then cancels the run), and stopTree
// itself continues whatever it stopped when it fails. Only SIGKILL of
// loadgen can leave it stopped; scripts/bench.sh sends SIGCONT before it
// stops a worker.

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// stopWait bounds the wait for every thread of the tree to reach the
// stopped state.
const stopWait = 10 * time.Second

// stoppedTree is a process tree held stopped by stopTree.
type stoppedTree struct {
	root    int
	once    sync.Once
	mu      sync.Mutex
	stopped []int // pids sent SIGSTOP, in order
	sigs    chan os.Signal
	done    chan struct{}
}

// stopTree sends SIGSTOP to pid and its descendants (the root first, so
// it forks no new child meanwhile; repeated until the tree no longer
// changes) and waits until every thread of every process is stopped.
// onSignal runs, after the tree is continued, when SIGINT, SIGTERM or
// SIGHUP arrives while it is stopped. On error nothing is left stopped.
func stopTree(pid int, onSignal func(os.Signal)) (*stoppedTree, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("stop process tree: pid %d", pid)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return nil, fmt.Errorf("stop process tree of %d: %w", pid, err)
	}
	t := &stoppedTree{root: pid, sigs: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(t.sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go t.watchSignals(onSignal)
	if err := t.stopAll(); err != nil {
		t.resume()
		return nil, err
	}
	return t, nil
}

func (t *stoppedTree) watchSignals(onSignal func(os.Signal)) {
	select {
	case s := <-t.sigs:
		t.resume()
		if onSignal != nil {
			onSignal(s)
		}
	case <-t.done:
	}
}

// stopAll stops the tree until a pass finds no process it has not stopped.
func (t *stoppedTree) stopAll() error {
	seen := map[int]bool{}
	for range 20 {
		fresh := 0
		for _, p := range treePIDs(t.root) {
			if seen[p] {
				continue
			}
			seen[p] = true
			err := syscall.Kill(p, syscall.SIGSTOP)
			if errors.Is(err, syscall.ESRCH) && p != t.root {
				continue // a child that exited meanwhile
			}
			if err != nil {
				return fmt.Errorf("SIGSTOP %d: %w", p, err)
			}
			t.mu.Lock()
			t.stopped = append(t.stopped, p)
			t.mu.Unlock()
			fresh++
		}
		if fresh == 0 {
			return nil
		}
		if err := t.waitStopped(); err != nil {
			return err
		}
	}
	return fmt.Errorf("process tree of %d keeps changing", t.root)
}

// waitStopped waits until every thread of the stopped processes is in the
// stopped state ("T"), processes gone excepted.
func (t *stoppedTree) waitStopped() error {
	deadline := time.Now().Add(stopWait)
	t.mu.Lock()
	pids := append([]int(nil), t.stopped...)
	t.mu.Unlock()
	for {
		running := -1
		for _, p := range pids {
			if !procStopped(p) {
				running = p
				break
			}
		}
		if running < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped after %v", running, stopWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// procStopped reports whether every thread of pid is stopped (true for a
// process that is gone, which can no longer consume).
func procStopped(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s := threadState(pid, tid); s != 0 && s != 'T' && s != 'Z' && s != 'X' {
			return false
		}
	}
	return true
}

// threadState is the state letter of a thread (0 if unreadable).
func threadState(pid, tid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == ')' {
			if i+2 < len(b) {
				return b[i+2]
			}
			return 0
		}
	}
	return 0
}

// resume continues every process it stopped and any descendant of the
// root found now, and removes the signal handler. Safe to call more than
// once and from several goroutines.
func (t *stoppedTree) resume() {
	t.once.Do(func() {
		t.mu.Lock()
		pids := append([]int(nil), t.stopped...)
		t.mu.Unlock()
		seen := map[int]bool{}
		for _, p := range append(pids, treePIDs(t.root)...) {
			if !seen[p] {
				seen[p] = true
				_ = syscall.Kill(p, syscall.SIGCONT)
			}
		}
		signal.Stop(t.sigs)
		close(t.done)
	})
}
