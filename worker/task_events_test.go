package worker

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// countingObserver counts events and reads only what the metrics read.
type countingObserver struct{ n int }

func (c *countingObserver) ObserveTask(ev TaskEvent) {
	if ev.Type != "" && ev.Task != "" {
		c.n++
	}
}

// succeededResult is a result the size of a file task's.
const succeededResult = `{"processed_file_id": 123456, "rows": 98765, "format": "vcf", "omics_type": "genomics",
"stats": {"variants": 98765, "samples": 12, "chromosomes": ["1", "2", "3", "X"], "mean_qual": 58.25}}`

// eventCycle returns a function that runs the start and settle hooks of
// one succeeded task, as the runtime does around its handler.
func eventCycle(tb testing.TB, observers ...Observer) func() {
	tb.Helper()
	reg := NewRegistry()
	if err := reg.Register("t.ok", func(context.Context, *Task) (any, error) { return nil, nil }, TaskOptions{}); err != nil {
		tb.Fatal(err)
	}
	w, err := New(Config{Queues: []string{"q"}}, workertest.NewBroker(), workertest.NewBackend(), reg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for _, o := range observers {
		w.AddObserver(o)
	}
	msg := protocol.NewTaskMessage("t.ok", []any{1}, nil)
	j := &job{d: &protocol.Delivery{Queue: "q"}, msg: msg, def: reg.lookup("t.ok")}
	meta := w.baseMeta(msg, protocol.StateSuccess, json.RawMessage(succeededResult))
	ctx := context.Background()
	return func() {
		w.hookStart(ctx, j)
		w.hookSettle(j, meta)
	}
}

// observedBy are the observer sets the hooks are measured with: nobody,
// and an observer that reads only what the metrics read.
var observedBy = []struct {
	name string
	obs  []Observer
}{
	{"unobserved", nil},
	{"metrics-like", []Observer{&countingObserver{}}},
}

// Issue 10 #2: with nobody observing, or only observers that read no
// Celery event fields (the metrics), the task hooks build no event
// fields: no map, no repr of the result (the task-succeeded path used to
// decode every result again: ~3.5 % CPU with events off).
func TestTaskHooksDoNoEventWorkUnobserved(t *testing.T) {
	for _, tc := range observedBy {
		t.Run(tc.name, func(t *testing.T) {
			cycle := eventCycle(t, tc.obs...)
			cycle() // first use of the per-task maps
			if n := testing.AllocsPerRun(100, cycle); n != 0 {
				t.Fatalf("start+settle hooks allocate %v times per task; want 0", n)
			}
		})
	}
}

func BenchmarkTaskHooks(b *testing.B) {
	for _, bc := range observedBy {
		b.Run(bc.name, func(b *testing.B) {
			cycle := eventCycle(b, bc.obs...)
			b.ReportAllocs()
			for b.Loop() {
				cycle()
			}
		})
	}
}
