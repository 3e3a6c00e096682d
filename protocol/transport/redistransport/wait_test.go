package redistransport

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestWaitCtx: the one wait behind sleepCtx and backoffWait ends on a
// closed wake channel (a sentinel master switch) or a done context, and
// does not wait for d <= 0.
func TestWaitCtx(t *testing.T) {
	woken := make(chan struct{})
	close(woken)
	if err := waitCtx(context.Background(), time.Hour, woken); err != nil {
		t.Errorf("woken: %v", err)
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waitCtx(done, time.Hour, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled, nil wake: %v", err)
	}
	if err := sleepCtx(done, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled, d 0: %v", err)
	}
	if err := sleepCtx(context.Background(), -time.Second); err != nil {
		t.Errorf("d < 0: %v", err)
	}
	c := &client{}
	if err := c.backoffWait(done, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("backoffWait without sentinel, cancelled: %v", err)
	}
}
