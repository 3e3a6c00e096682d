package vcf

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen"
)

type discard struct{ n int }

func (d *discard) WriteRecord(*processing.Record) error { d.n++; return nil }

// BenchmarkVCF converts a generated 16 MiB VCF (run `make bench-convert`
// for the 100 MB file end to end). Reports MB/s of input and heap bytes
// allocated per record.
func BenchmarkVCF(b *testing.B) {
	var buf bytes.Buffer
	if _, err := gen.VCF(&buf, 16<<20, 1); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	records := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d discard
		if _, err := (Converter{}).Convert(context.Background(), processing.Input{R: bytes.NewReader(data)}, &d); err != nil {
			b.Fatal(err)
		}
		records += d.n
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(records), "B/record")
}

// TestGeneratedVCF checks that the benchmark generator writes VCF this
// converter reads completely.
func TestGeneratedVCF(t *testing.T) {
	var buf bytes.Buffer
	n, err := gen.VCF(&buf, 256<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	var d discard
	sum, err := (Converter{}).Convert(context.Background(), processing.Input{R: &buf}, &d)
	if err != nil || int64(sum.Records) != n || d.n != sum.Records {
		t.Fatalf("err %v, %d records, generator wrote %d", err, sum.Records, n)
	}
}
