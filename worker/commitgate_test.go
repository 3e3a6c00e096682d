package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/protocol"
)

// The hard time limit racing a task's commit (issue 9 #3): the test fires
// the limit itself (Config.hardTimer) at each point of the commit, so the
// race is forced deterministically. The state must be SUCCESS exactly when
// the commit happened, FAILURE TimeLimitExceeded exactly when it did not.
func TestHardLimitAndCommitDecideInOnePlace(t *testing.T) {
	fire := make(chan time.Time)
	type step struct {
		at       string // where the handler waits for the limit: "before", "during", "after"
		commitOK bool   // what the commit step returns
	}
	type call struct {
		step      step
		reached   chan struct{} // the handler is at step.at
		proceed   chan struct{}
		committed chan bool // whether fn ran and succeeded
		commitErr chan error
	}
	calls := make(chan *call, 1)
	reg := NewRegistry()
	mustRegister(t, reg, "t.commit", func(ctx context.Context, tk *Task) (any, error) {
		c := <-calls
		wait := func(at string) {
			if c.step.at == at {
				close(c.reached)
				<-c.proceed
			}
		}
		wait("before")
		ran := false
		err := tk.Commit(ctx, func(ctx context.Context) error {
			ran = true
			wait("during")
			if !c.step.commitOK {
				return errors.New("commit failed")
			}
			return nil
		})
		c.committed <- ran && err == nil
		c.commitErr <- err
		if err != nil {
			return nil, err
		}
		wait("after")
		return "committed", nil
	}, TaskOptions{})
	cfg := Config{Concurrency: 1, hardTimer: func(time.Duration) (<-chan time.Time, func() bool) {
		return fire, func() bool { return true }
	}}
	h := start(t, cfg, reg)
	ten := 10.0
	const timeLimitJSON = `{"exc_type":"TimeLimitExceeded","exc_message":[10.0],"exc_module":"billiard.exceptions"}`

	for i := range 10 {
		for _, s := range []step{{"before", true}, {"during", true}, {"during", false}, {"after", true}} {
			t.Run(fmt.Sprintf("%d/%s/ok=%v", i, s.at, s.commitOK), func(t *testing.T) {
				c := &call{step: s, reached: make(chan struct{}), proceed: make(chan struct{}),
					committed: make(chan bool, 1), commitErr: make(chan error, 1)}
				calls <- c
				m := h.send(t, "t.commit", nil, nil, func(m *protocol.TaskMessage) { m.TimeLimit = [2]*float64{&ten, nil} })
				<-c.reached
				fire <- time.Now() // the hard limit expires now
				if s.at == "before" {
					// The limit wins before the commit began: FAILURE,
					// then the late commit is refused.
					f := h.backend.waitFinal(t, m.ID)
					close(c.proceed)
					if got := resultJSON(t, f); f.Status != protocol.StateFailure || got != timeLimitJSON {
						t.Errorf("state %s %s, want FAILURE TimeLimitExceeded", f.Status, got)
					}
					if <-c.committed {
						t.Error("the commit ran after the hard limit")
					}
					if err := <-c.commitErr; !errors.Is(err, ErrTaskFinished) {
						t.Errorf("Commit = %v, want ErrTaskFinished", err)
					}
					return
				}
				close(c.proceed)
				f := h.backend.waitFinal(t, m.ID)
				committed := <-c.committed
				<-c.commitErr
				if committed != s.commitOK {
					t.Fatalf("committed = %v", committed)
				}
				switch got := resultJSON(t, f); {
				case committed && (f.Status != protocol.StateSuccess || got != `"committed"`):
					t.Errorf("committed, but state %s %s", f.Status, got)
				case !committed && (f.Status != protocol.StateFailure || got != timeLimitJSON):
					t.Errorf("not committed, but state %s %s", f.Status, got)
				}
			})
		}
	}
}
