package worker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// userTasks registers "t.user" (key: kwarg "user"); tasks of user "a" block
// until gate is closed, the others return at once. It tracks the highest
// number of tasks of one user running together.
type userTasks struct {
	gate    chan struct{}
	mu      sync.Mutex
	running map[string]int
	peak    map[string]int
}

func newUserTasks(t *testing.T, reg *Registry, keyErr error) *userTasks {
	u := &userTasks{gate: make(chan struct{}), running: map[string]int{}, peak: map[string]int{}}
	mustRegister(t, reg, "t.user", func(ctx context.Context, t *Task) (any, error) {
		user, _ := t.StringArgOr("user", "")
		u.mu.Lock()
		u.running[user]++
		u.peak[user] = max(u.peak[user], u.running[user])
		u.mu.Unlock()
		defer func() {
			u.mu.Lock()
			u.running[user]--
			u.mu.Unlock()
		}()
		if user == "a" {
			select {
			case <-u.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return user, nil
	}, TaskOptions{FairnessKey: func(_ context.Context, t *Task) (string, error) {
		if keyErr != nil {
			return "", keyErr
		}
		return t.StringArgOr("user", "")
	}})
	return u
}

func TestFairnessOneUserCannotStarveOthers(t *testing.T) {
	reg := NewRegistry()
	u := newUserTasks(t, reg, nil)
	h := start(t, Config{Concurrency: 3, Fairness: Fairness{MaxPerKey: 1}}, reg)
	var as, bs []*protocol.TaskMessage
	for range 40 {
		as = append(as, h.send(t, "t.user", nil, map[string]any{"user": "a"}))
	}
	for _, user := range []string{"b", "c", "b", ""} {
		bs = append(bs, h.send(t, "t.user", nil, map[string]any{"user": user}))
	}
	// Every other user's task finishes while user a's first task still
	// blocks and its 39 others wait: none starves behind the backlog.
	for _, m := range bs {
		if f := h.backend.WaitFinal(t, m.ID); f.Status != protocol.StateSuccess {
			t.Fatalf("%s: %s", m.ID, f.Status)
		}
	}
	running, parked := h.w.FairnessSnapshot()
	if running["a"] != 1 || parked["a"] != 39 {
		t.Fatalf("running %v parked %v, want a: 1 running, 39 held back", running, parked)
	}
	if unacked, _, _, _ := h.broker.Snapshot(); unacked != 40 {
		t.Fatalf("%d messages held, want 40 (held back messages stay unacked and leased)", unacked)
	}
	close(u.gate)
	for _, m := range as {
		if f := h.backend.WaitFinal(t, m.ID); f.Status != protocol.StateSuccess {
			t.Fatalf("%s: %s", m.ID, f.Status)
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.peak["a"] != 1 {
		t.Errorf("user a peaked at %d running tasks, want 1", u.peak["a"])
	}
	// The result is stored just before the job is forgotten: wait for it.
	workertest.WaitUntil(t, "fairness state released", func() bool {
		running, parked := h.w.FairnessSnapshot()
		return len(running) == 0 && len(parked) == 0
	})
}

func TestFairnessBoundsParkedAndShutdownRestores(t *testing.T) {
	reg := NewRegistry()
	newUserTasks(t, reg, nil)
	h := start(t, Config{Concurrency: 2, ShutdownTimeout: 50 * time.Millisecond,
		Fairness: Fairness{MaxPerKey: 1, MaxParked: 3}}, reg)
	for range 10 {
		h.send(t, "t.user", nil, map[string]any{"user": "a"})
	}
	// One runs; the window (2) + MaxParked (3) lets 4 more be held back.
	workertest.WaitUntil(t, "4 held back", func() bool {
		_, parked := h.w.FairnessSnapshot()
		return parked["a"] == 4
	})
	h.stop(t) // warm: parked messages restored, the running one after the timeout
	unacked, _, restored, _ := h.broker.Snapshot()
	held := h.broker.MaxHeld()
	// window 2 + 3 parked.
	if held > 5 {
		t.Errorf("%d messages held at once, want at most 5 (MaxParked bounds the window)", held)
	}
	if len(restored) != held || unacked != 0 {
		t.Errorf("restored %d, unacked %d: held back messages must be restored at shutdown", len(restored), unacked)
	}
}

func TestFairnessKeyErrorRunsUnlimited(t *testing.T) {
	reg := NewRegistry()
	u := newUserTasks(t, reg, errors.New("database down"))
	close(u.gate)
	h := start(t, Config{Concurrency: 2, Fairness: Fairness{MaxPerKey: 1}}, reg)
	var ms []*protocol.TaskMessage
	for range 5 {
		ms = append(ms, h.send(t, "t.user", nil, map[string]any{"user": "a"}))
	}
	for _, m := range ms {
		if f := h.backend.WaitFinal(t, m.ID); f.Status != protocol.StateSuccess {
			t.Fatalf("%s", f.Status)
		}
	}
}

// TestRateLimitSpacesStarts: Celery's per-task rate_limit ("10/s",
// "100/m"), enforced by ratelimit.go, spaces the starts of one task name by
// 1/rate (a lower bound that the token bucket guarantees; not a speed
// measurement) and does not hold back other task names.
func TestRateLimitSpacesStarts(t *testing.T) {
	reg := NewRegistry()
	var mu sync.Mutex
	starts := map[string][]time.Time{}
	h := func(_ context.Context, t *Task) (any, error) {
		mu.Lock()
		starts[t.Name] = append(starts[t.Name], time.Now())
		mu.Unlock()
		return nil, nil
	}
	mustRegister(t, reg, "t.limited", h, TaskOptions{})
	mustRegister(t, reg, "t.minute", h, TaskOptions{})
	mustRegister(t, reg, "t.free", h, TaskOptions{})
	hs := start(t, Config{Concurrency: 4, PrefetchMultiplier: 4}, reg)
	if _, err := hs.w.SetRateLimit("t.limited", "10/s"); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.w.SetRateLimit("t.minute", "100/m"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	var last []*protocol.TaskMessage
	for range 5 {
		last = append(last, hs.send(t, "t.limited", nil, nil))
	}
	for range 2 {
		last = append(last, hs.send(t, "t.minute", nil, nil))
	}
	var free []*protocol.TaskMessage
	for range 5 {
		free = append(free, hs.send(t, "t.free", nil, nil))
	}
	for _, m := range append(free, last...) {
		if f := hs.backend.WaitFinal(t, m.ID); f.Status != protocol.StateSuccess {
			t.Fatalf("%s: %s", m.Task, f.Status)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The i-th token of a bucket is released no earlier than i/rate after
	// the first message arrived, so the i-th start (in time order) is at
	// least i×gap after the messages were sent. (Consecutive starts may
	// bunch when a released task waited for a pool slot.)
	check := func(name string, gap time.Duration) {
		s := slices.Clone(starts[name])
		slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
		for i, at := range s {
			if d := at.Sub(t0); d < time.Duration(i)*gap-5*time.Millisecond {
				t.Errorf("%s: start %d came %v after sending, want >= %v", name, i, d, time.Duration(i)*gap)
			}
		}
	}
	check("t.limited", 100*time.Millisecond)
	check("t.minute", 600*time.Millisecond)
	// The free task was not queued behind the limited ones: all of its
	// runs started before the second t.minute run (due 600 ms after the
	// first).
	lastLimited := starts["t.minute"][len(starts["t.minute"])-1]
	for _, s := range starts["t.free"] {
		if s.After(lastLimited) {
			t.Errorf("t.free started after the rate-limited backlog")
		}
	}
}
