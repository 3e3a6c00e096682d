package redistransport

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// TestWriterReplySpinOff: with ReplySpin negative the writer's connection
// reads without polling, and writes still go through.
func TestWriterReplySpinOff(t *testing.T) {
	b, _, _ := newTestBroker(t, brokerDB, Config{ReplySpin: -1})
	r, rc, _ := newTestBackend(t, brokerDB, Config{})
	r.UseBroker(b)
	id := pyfmt.NewUUID4().String()
	if err := r.Store(ctxT(t), &protocol.ResultMeta{Status: protocol.StateSuccess, Result: 1, TaskID: id}); err != nil {
		t.Fatal(err)
	}
	if v, _ := rc.Do("GET", r.Key(id)); !strings.Contains(string(v.([]byte)), "SUCCESS") {
		t.Fatalf("stored %s", v)
	}
}

// TestReplySpinConfig: negative turns the polling off, a value is used as
// given, zero is the default (100 µs with two or more CPUs, none with one).
func TestReplySpinConfig(t *testing.T) {
	def := replySpin
	if runtime.NumCPU() < 2 {
		def = 0
	}
	for _, tt := range []struct {
		in, want time.Duration
	}{{-1, 0}, {0, def}, {50 * time.Microsecond, 50 * time.Microsecond}} {
		if got := (Config{ReplySpin: tt.in}).replySpin(); got != tt.want {
			t.Errorf("ReplySpin %v: %v, want %v", tt.in, got, tt.want)
		}
	}
}
