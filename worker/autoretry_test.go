package worker

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

func TestAutoRetryBackoff(t *testing.T) {
	tests := []struct {
		name   string
		a      AutoRetry
		n      int
		lo, hi time.Duration
	}{
		{"default first, jitter", AutoRetry{}, 0, time.Millisecond, time.Second},
		{"default third, jitter", AutoRetry{}, 2, time.Millisecond, 4 * time.Second},
		{"no jitter 0", AutoRetry{NoJitter: true}, 0, time.Second, time.Second},
		{"no jitter 3", AutoRetry{NoJitter: true}, 3, 8 * time.Second, 8 * time.Second},
		{"capped", AutoRetry{NoJitter: true, Base: time.Second, Max: 5 * time.Second}, 10, 5 * time.Second, 5 * time.Second},
		{"huge n does not overflow", AutoRetry{NoJitter: true}, 200, 600 * time.Second, 600 * time.Second},
		{"custom base", AutoRetry{NoJitter: true, Base: 100 * time.Millisecond}, 2, 400 * time.Millisecond, 400 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				d := tc.a.Backoff(tc.n)
				if d < tc.lo || d > tc.hi {
					t.Fatalf("Backoff(%d) = %v, want in [%v, %v]", tc.n, d, tc.lo, tc.hi)
				}
			}
		})
	}
}

func TestTransientClassification(t *testing.T) {
	base := errors.New("connection refused")
	classify := func(err error) bool { return strings.Contains(err.Error(), "refused") }
	tests := []struct {
		name string
		a    AutoRetry
		err  error
		want bool
	}{
		{"marked", AutoRetry{}, Transient(base), true},
		{"marked and wrapped", AutoRetry{}, fmt.Errorf("load: %w", Transient(base)), true},
		{"plain", AutoRetry{}, base, false},
		{"classifier", AutoRetry{IsTransient: classify}, base, true},
		{"disabled", AutoRetry{Disabled: true}, Transient(base), false},
		{"nil", AutoRetry{}, nil, false},
	}
	for _, tc := range tests {
		if got := tc.a.transient(tc.err); got != tc.want {
			t.Errorf("%s: transient = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Transient(nil) != nil {
		t.Error("Transient(nil) != nil")
	}
	if !errors.Is(Transient(base), base) || !IsTransient(Transient(base)) {
		t.Error("Transient must wrap")
	}
}

// TestAutoRetryUntilFailure: a handler that always returns a transient
// error is retried MaxRetries times (each republished message is fed back
// to the worker, as Redis would), with growing countdowns, then fails with
// the last error; the RETRY states carry the underlying exception.
func TestAutoRetryUntilFailure(t *testing.T) {
	reg := NewRegistry()
	runs := make(chan int, 10)
	mustRegister(t, reg, "t.transient", func(_ context.Context, t *Task) (any, error) {
		runs <- t.Retries
		return nil, Transient(PyErrorf("ConnectionError", "database unavailable (attempt %d)", t.Retries+1))
	}, TaskOptions{AutoRetry: AutoRetry{Base: 10 * time.Millisecond, NoJitter: true}})
	mustRegister(t, reg, "t.transient_off", func(_ context.Context, t *Task) (any, error) {
		return nil, Transient(NewPyError("ConnectionError", "no auto retry"))
	}, TaskOptions{AutoRetry: AutoRetry{Disabled: true}})
	mustRegister(t, reg, "t.permanent", func(_ context.Context, t *Task) (any, error) {
		return nil, NewPyError("ValueError", "bad input")
	}, TaskOptions{})
	h := start(t, Config{Concurrency: 2}, reg)
	// The countdowns are read from the RETRY states ("Retry in 0.01s", the
	// value the worker computed), not from the observed time left until
	// the ETA, which shrinks by however long a loaded machine takes to get
	// here. The ETA is only checked against a lower bound that holds
	// whatever the scheduling: it is computed after the delivery was handed
	// to the worker, so it lies at least one countdown after that moment.
	retryIn := regexp.MustCompile(`Retry in ([0-9.]+)s`)
	sent := time.Now()
	m := h.send(t, "t.transient", nil, nil)
	var countdowns []time.Duration
	for i := 0; ; i++ {
		f := h.backend.WaitFinal(t, m.ID)
		if f.Status == protocol.StateFailure {
			info := f.Result.(*protocol.ExceptionInfo)
			if info.Type != "ConnectionError" || info.Message[0] != "database unavailable (attempt 4)" {
				t.Fatalf("final FAILURE %s", workertest.ResultJSON(t, f))
			}
			break
		}
		if f.Status != protocol.StateRetry || i > 3 {
			t.Fatalf("state %d: %s %s", i, f.Status, workertest.ResultJSON(t, f))
		}
		if info := f.Result.(*protocol.ExceptionInfo); info.Type != "ConnectionError" {
			t.Fatalf("RETRY result %s", workertest.ResultJSON(t, f))
		}
		if f.Traceback == nil {
			t.Fatalf("RETRY %d without traceback", i)
		}
		sm := retryIn.FindStringSubmatch(*f.Traceback)
		if sm == nil {
			t.Fatalf("RETRY %d traceback without countdown: %q", i, *f.Traceback)
		}
		secs, err := strconv.ParseFloat(sm[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		countdown := time.Duration(secs * float64(time.Second)).Round(time.Millisecond)
		countdowns = append(countdowns, countdown)
		// Feed the retry message back (Redis would deliver it).
		var pub []workertest.Published
		workertest.WaitUntil(t, "retry publish", func() bool {
			_, _, _, pub = h.broker.Snapshot()
			return len(pub) > i
		})
		env, err := protocol.DecodeEnvelope(pub[i].Raw)
		if err != nil {
			t.Fatal(err)
		}
		re, err := protocol.DecodeTask(env)
		if err != nil {
			t.Fatal(err)
		}
		if re.ETA == nil || re.Retries != i+1 {
			t.Fatalf("retry message %d: eta %v retries %d", i, re.ETA, re.Retries)
		}
		if earliest := sent.Add(countdown); re.ETA.Before(earliest.Add(-time.Millisecond)) {
			t.Errorf("retry %d: ETA %v earlier than delivery + countdown %v", i, *re.ETA, earliest)
		}
		h.backend.Reset()
		sent = time.Now()
		h.broker.Put(&protocol.Delivery{Queue: "q", Tag: env.Properties.DeliveryTag, Raw: pub[i].Raw, Envelope: env})
	}
	// NoJitter, Base 10 ms: retry n waits exactly Base×2^n.
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}
	if !slices.Equal(countdowns, want) {
		t.Errorf("countdowns %v, want %v (3 retries, the default max_retries, doubling)", countdowns, want)
	}
	if n := len(runs); n != 4 {
		t.Errorf("%d runs, want 4", n)
	}
	off := h.send(t, "t.transient_off", nil, nil)
	if f := h.backend.WaitFinal(t, off.ID); f.Status != protocol.StateFailure || workertest.ResultJSON(t, f) != `{"exc_type":"ConnectionError","exc_message":["no auto retry"],"exc_module":"builtins"}` {
		t.Fatalf("disabled: %s %s", f.Status, workertest.ResultJSON(t, f))
	}
	p := h.send(t, "t.permanent", nil, nil)
	if f := h.backend.WaitFinal(t, p.ID); f.Status != protocol.StateFailure {
		t.Fatalf("permanent error retried: %s", f.Status)
	}
}

func TestStorePause(t *testing.T) {
	w := &Worker{cfg: Config{RetryPause: time.Second}}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	var total time.Duration
	for i, ms := range want {
		if got := w.storePause(i + 1); got != ms*time.Millisecond {
			t.Errorf("storePause(%d) = %v, want %v", i+1, got, ms*time.Millisecond)
		}
		total += w.storePause(i + 1)
	}
	if total < 10*time.Second {
		t.Errorf("result writes give up after %v; a Redis restart takes seconds", total)
	}
}
