package protocol

import (
	"testing"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

func BenchmarkDecodeTask(b *testing.B) {
	benchDecode(b, readFile(b, "testdata/tasks/v2_args_kwargs.json"))
}

// benchDecode decodes raw (envelope, then task message) b.N times.
func benchDecode(b *testing.B, raw []byte) {
	b.ReportAllocs()
	for b.Loop() {
		env, err := DecodeEnvelope(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeTask(env); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeTask(b *testing.B) {
	env, _ := DecodeEnvelope(readFile(b, "testdata/tasks/v2_args_kwargs.json"))
	msg, err := DecodeTask(env)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeTask(msg, PublishOptions{Queue: "celery"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarkRedelivered(b *testing.B) {
	raw := readFile(b, "testdata/tasks/v2_args_kwargs.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MarkRedelivered(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResultMetaMarshal(b *testing.B) {
	m := ResultMeta{Status: StateFailure, Result: NewExceptionInfo("ValueError", ModuleBuiltins, "boom"), TaskID: pyfmt.NewUUID4().String()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeNoop decodes the message the load generator publishes
// for diag.noop (args [], kwargs {}, Celery's protocol 2 headers): what
// the worker decodes per task in `make bench`.
func BenchmarkDecodeNoop(b *testing.B) {
	m := NewTaskMessage("diag.noop", nil, nil)
	m.ID = pyfmt.NewUUID4().String()
	m.RootID = m.ID
	raw, err := EncodeTask(m, PublishOptions{Queue: "q", Origin: "loadgen"})
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, raw)
}
