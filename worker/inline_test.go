package worker

import (
	"context"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// Handlers run on their pool goroutine (no goroutine of their own). A
// handler that ignores its context past the hard limit is taken over: the
// FAILURE is recorded, the slot goes on running tasks, and a warm shutdown
// completes although the handler never returns (its goroutine no longer
// counts for the pool).
func TestHardLimitTakeoverKeepsSlotAndShutdown(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) }) // after the worker stopped
	reg := NewRegistry()
	mustRegister(t, reg, "t.stubborn", func(context.Context, *Task) (any, error) {
		<-block
		return "late", nil
	}, TaskOptions{})
	mustRegister(t, reg, "t.ok", func(context.Context, *Task) (any, error) { return "ok", nil }, TaskOptions{})
	fires := make(chan func(), 4)
	h := start(t, Config{Concurrency: 1, hardTimer: func(_ time.Duration, f func()) func() bool {
		fires <- f
		return func() bool { return false }
	}}, reg)
	ten := 10.0
	limited := func(m *protocol.TaskMessage) { m.TimeLimit = [2]*float64{&ten, nil} }
	for range 2 { // twice: the slot taken over once is taken over again
		m := h.send(t, "t.stubborn", nil, nil, limited)
		(<-fires)()
		if f := h.backend.waitFinal(t, m.ID); f.Status != protocol.StateFailure {
			t.Fatalf("stubborn: %s", f.Status)
		}
		ok := h.send(t, "t.ok", nil, nil, limited)
		(<-fires)() // arms again for t.ok: firing after it returned changes nothing
		if f := h.backend.waitFinal(t, ok.ID); f.Status != protocol.StateSuccess {
			t.Fatalf("after the takeover: %s", f.Status)
		}
	}
	h.stop(t) // returns although two handlers still block
}

// A cold shutdown abandons a handler that ignores cancellation: its
// message is restored and Run returns (after the grace period).
func TestColdShutdownAbandonsStubbornHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the cold-shutdown grace period")
	}
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	started := make(chan struct{}, 1)
	reg := NewRegistry()
	mustRegister(t, reg, "t.stubborn", func(context.Context, *Task) (any, error) {
		started <- struct{}{}
		<-block
		return "late", nil
	}, TaskOptions{})
	h := start(t, Config{Concurrency: 1}, reg)
	m := h.send(t, "t.stubborn", nil, nil)
	<-started
	h.w.ColdShutdown()
	h.stop(t)
	if _, _, restored, _ := h.broker.snapshot(); len(restored) != 1 {
		t.Fatalf("restored %v", restored)
	}
	if f := h.backend.final(m.ID); f != nil {
		t.Fatalf("abandoned task stored %s", f.Status)
	}
}
