package worker

import (
	"context"
	"testing"

	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker/workertest"
)

// FuzzReceiveExecute feeds arbitrary envelopes through classification and
// execution: nothing may panic, and every delivery must end acknowledged,
// queued or held (never lost from the held set while unacked).
func FuzzReceiveExecute(f *testing.F) {
	for _, m := range []*protocol.TaskMessage{
		protocol.NewTaskMessage("t.echo", []any{1, "a"}, map[string]any{"n": 2}),
		protocol.NewTaskMessage("t.unknown", nil, nil),
	} {
		raw, err := protocol.EncodeTask(m, protocol.PublishOptions{Queue: "q"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"body": "e30=", "content-type": "application/x-python-serialize", "headers": {"id": "x", "task": "t.echo"}, "properties": {"delivery_tag": "t1", "body_encoding": "base64"}}`))
	f.Add([]byte(`{"body": "{\"task\": \"t.echo\", \"id\": \"v1\", \"args\": [1], \"kwargs\": {}, \"eta\": \"2099-01-01T00:00:00\"}", "content-type": "application/json", "headers": {}, "properties": {"delivery_tag": "t2"}}`))
	f.Add([]byte(`{"body": "W1tdLCB7fSwgbnVsbF0=", "content-type": "application/json", "headers": {"id": "x", "task": "t.echo", "expires": "2000-01-01T00:00:00", "timelimit": [0.5, null]}, "properties": {"delivery_tag": "t3", "body_encoding": "base64"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		reg := NewRegistry()
		_ = reg.Register("t.echo", func(_ context.Context, t *Task) (any, error) {
			_, _ = t.IntArgOr("n", 0)
			_, _ = t.StringArgOr("s", "")
			return map[string]any{"args": t.Args, "kwargs": t.Kwargs}, nil
		}, TaskOptions{Params: []string{"a", "b"}, VarKwargs: true})
		b := workertest.NewBroker()
		w, err := New(Config{Concurrency: 1, RetryPause: 1}, b, workertest.NewBackend(), reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := &protocol.Delivery{Queue: "q", Tag: "fuzz", Raw: raw}
		d.Envelope, d.DecodeErr = protocol.DecodeEnvelope(raw)
		ctx := context.Background()
		w.receive(ctx, d)
		w.mu.Lock()
		ready := w.ready
		w.ready = nil
		for j := range w.held {
			if j.timer != nil {
				j.timer.Stop()
				j.state = stateDone
			}
		}
		w.mu.Unlock()
		for _, j := range ready {
			j.state = stateRunning
			w.execute(j)
		}
	})
}
