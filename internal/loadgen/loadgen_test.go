package loadgen

import (
	"os"
	"strings"
	"testing"
)

func TestFinalState(t *testing.T) {
	tests := []struct {
		meta          string
		final, failed bool
	}{
		{`{"status": "SUCCESS", "result": {"ok": true}}`, true, false},
		{`{"status":"FAILURE","result":{"exc_type":"ValueError"}}`, true, true},
		{`{"result": null, "status" :  "REVOKED"}`, true, true},
		{`{"status": "STARTED", "result": {"pid": 1}}`, false, false},
		{`{"status": "PROGRESS", "result": {"status": "SUCCESS"}}`, false, false},
		{`{"status": "PENDING"}`, false, false},
		{`{"status": 5}`, false, false},
		{`{"status": "SUCC`, false, false},
		{``, false, false},
		{`not json`, false, false},
	}
	for _, tt := range tests {
		final, failed := finalState([]byte(tt.meta))
		if final != tt.final || failed != tt.failed {
			t.Errorf("finalState(%q) = %v, %v; want %v, %v", tt.meta, final, failed, tt.final, tt.failed)
		}
	}
}

func TestLatencies(t *testing.T) {
	tests := []struct {
		in   []float64
		want *LatencyStats
	}{
		{nil, nil},
		{[]float64{7}, &LatencyStats{P50: 7, P90: 7, P99: 7, Max: 7, Mean: 7}},
		{[]float64{4, 1, 3, 2}, &LatencyStats{P50: 2, P90: 4, P99: 4, Max: 4, Mean: 2.5}},
	}
	for _, tt := range tests {
		got := latencies(tt.in)
		if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
			t.Errorf("latencies(%v) = %+v; want %+v", tt.in, got, tt.want)
		}
	}
	// 1..100: the p-th value.
	var ms []float64
	for i := 100; i >= 1; i-- {
		ms = append(ms, float64(i))
	}
	got := latencies(ms)
	if got.P50 != 50 || got.P90 != 90 || got.P99 != 99 || got.Max != 100 || got.Mean != 50.5 {
		t.Errorf("latencies(1..100) = %+v", got)
	}
}

func TestTaskIDShape(t *testing.T) {
	p := runPrefix()
	id := taskID(p, 0x2a)
	// UUID4 shape: 8-4-4-4-12 hex, version 4, variant a.
	parts := strings.Split(id, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 ||
		len(parts[3]) != 4 || len(parts[4]) != 12 || parts[2][0] != '4' || parts[3][0] != 'a' {
		t.Fatalf("task id %q is not UUID4-shaped", id)
	}
	if !strings.HasSuffix(id, "00000000002a") || !strings.HasPrefix(id, p) {
		t.Fatalf("task id %q does not carry prefix %q and counter 0x2a", id, p)
	}
	if runPrefix() == p {
		t.Fatal("two run prefixes are equal")
	}
}

func TestTreeRSS(t *testing.T) {
	if rss := treeRSSKiB(os.Getpid()); rss <= 0 {
		t.Fatalf("treeRSSKiB(self) = %d", rss)
	}
	if rss := treeRSSKiB(1 << 30); rss != 0 {
		t.Fatalf("treeRSSKiB(no such pid) = %d", rss)
	}
}

func TestParseArgs(t *testing.T) {
	args, kwargs, err := ParseArgs(`[5, "a"]`, `{"steps": 3}`)
	if err != nil {
		t.Fatal(err)
	}
	if args[0].(interface{ String() string }).String() != "5" || kwargs["steps"].(interface{ String() string }).String() != "3" {
		t.Errorf("numbers not kept as json.Number: %#v %#v", args, kwargs)
	}
	if _, _, err := ParseArgs(`{`, `{}`); err == nil || !strings.Contains(err.Error(), "--args") {
		t.Errorf("bad --args: %v", err)
	}
	if _, _, err := ParseArgs(`[]`, `[1]`); err == nil || !strings.Contains(err.Error(), "--kwargs") {
		t.Errorf("bad --kwargs: %v", err)
	}
}
