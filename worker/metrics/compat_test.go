package metrics

import (
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/omicsomics/omics-worker/worker"
)

// parseScrape parses a text exposition into its metric families.
func parseScrape(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return fams
}

// labelKey identifies a series within its family.
func labelKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// sameFloat compares sums accumulated in different orders.
func sameFloat(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// Issue 10 #7: the move from the hand-written exposition to client_golang
// keeps every family of the old scrape (testdata/scrape_handwritten.txt,
// rendered by the hand-written code from the same state) with its help
// text, type, label names and values, histogram bounds and values. The
// frozen file was written by the hand-written Collector.Write from
// fullSrc, fullBroker and populate (commit a54ad53); it is not regenerated.
func TestScrapeMatchesHandwritten(t *testing.T) {
	frozen, err := os.ReadFile("testdata/scrape_handwritten.txt")
	if err != nil {
		t.Fatal(err)
	}
	old := parseScrape(t, string(frozen))
	c := New(Config{Version: "v1.2.3"}, fullSrc{}, fullBroker{})
	populate(c)
	cur := parseScrape(t, scrape(t, c))
	if len(old) != 16 {
		t.Fatalf("frozen scrape has %d families, want 16", len(old))
	}
	for name, of := range old {
		nf := cur[name]
		if nf == nil {
			t.Errorf("%s: missing", name)
			continue
		}
		if nf.GetHelp() != of.GetHelp() || nf.GetType() != of.GetType() {
			t.Errorf("%s: help/type %q %v, want %q %v", name, nf.GetHelp(), nf.GetType(), of.GetHelp(), of.GetType())
		}
		if len(of.GetMetric()) == 0 || len(nf.GetMetric()) != len(of.GetMetric()) {
			t.Errorf("%s: %d series, want %d", name, len(nf.GetMetric()), len(of.GetMetric()))
		}
		series := map[string]*dto.Metric{}
		for _, m := range nf.GetMetric() {
			series[labelKey(m)] = m
		}
		for _, om := range of.GetMetric() {
			nm := series[labelKey(om)]
			if nm == nil {
				t.Errorf("%s{%s}: missing", name, labelKey(om))
				continue
			}
			compareSeries(t, name+"{"+labelKey(om)+"}", om, nm)
		}
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "go_memstats_alloc_bytes", "go_info",
		"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds"} {
		if cur[name] == nil {
			t.Errorf("standard collector metric %s missing", name)
		}
	}
}

func compareSeries(t *testing.T, id string, om, nm *dto.Metric) {
	t.Helper()
	switch {
	case om.Counter != nil:
		if nm.GetCounter().GetValue() != om.GetCounter().GetValue() {
			t.Errorf("%s: %v, want %v", id, nm.GetCounter().GetValue(), om.GetCounter().GetValue())
		}
	case om.Gauge != nil:
		if nm.GetGauge().GetValue() != om.GetGauge().GetValue() {
			t.Errorf("%s: %v, want %v", id, nm.GetGauge().GetValue(), om.GetGauge().GetValue())
		}
	case om.Histogram != nil:
		oh, nh := om.GetHistogram(), nm.GetHistogram()
		if nh.GetSampleCount() != oh.GetSampleCount() || !sameFloat(nh.GetSampleSum(), oh.GetSampleSum()) {
			t.Errorf("%s: count/sum %d %v, want %d %v", id, nh.GetSampleCount(), nh.GetSampleSum(), oh.GetSampleCount(), oh.GetSampleSum())
		}
		if len(nh.GetBucket()) != len(oh.GetBucket()) {
			t.Fatalf("%s: %d buckets, want %d", id, len(nh.GetBucket()), len(oh.GetBucket()))
		}
		for i, ob := range oh.GetBucket() {
			nb := nh.GetBucket()[i]
			if nb.GetUpperBound() != ob.GetUpperBound() || nb.GetCumulativeCount() != ob.GetCumulativeCount() {
				t.Errorf("%s: bucket %d le=%v %d, want le=%v %d", id, i, nb.GetUpperBound(), nb.GetCumulativeCount(),
					ob.GetUpperBound(), ob.GetCumulativeCount())
			}
		}
	default:
		t.Errorf("%s: unexpected kind", id)
	}
}

// client_golang refuses label values that are not UTF-8 (a panic in
// WithLabelValues); hostname, queue, op and task values are made valid
// first.
func TestInvalidUTF8LabelValues(t *testing.T) {
	c := New(Config{Version: "v\xff"}, badSrc{}, fullBroker{})
	c.ObserveTask(worker.TaskEvent{Type: worker.EventTaskSucceeded, Task: "t\xffx"})
	c.RedisError("op\xfe")
	out := scrape(t, c)
	for _, want := range []string{
		"omics_worker_info{hostname=\"h\ufffd\",version=\"v\ufffd\"} 1",
		"omics_worker_tasks_succeeded_total{task=\"t\ufffdx\"} 1",
		"omics_worker_redis_errors_total{op=\"op\ufffd\"} 1",
		"omics_worker_queue_length{priority=\"0\",queue=\"q\ufffd\"} 3",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q", want)
		}
	}
}

type badSrc struct{ fullSrc }

func (badSrc) Hostname() string { return "h\xff" }
func (badSrc) Queues() []string { return []string{"q\xff", "q\xfe"} }
