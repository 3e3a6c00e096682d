package redistransport

import (
	"strings"
	"testing"

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
