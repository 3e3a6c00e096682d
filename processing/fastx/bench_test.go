package fastx

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen"
)

type discard struct{ n int }

func (d *discard) WriteRecord(*processing.Record) error { d.n++; return nil }

// BenchmarkFASTQGzip converts a generated FASTQ.gz of 16 MiB uncompressed
// (150 bp reads), decompression included. MB/s is of uncompressed input;
// "gzMB/s" of the compressed file.
func BenchmarkFASTQGzip(b *testing.B) {
	var z bytes.Buffer
	if _, err := gen.FASTQGzip(&z, 16<<20, 150, 1); err != nil {
		b.Fatal(err)
	}
	data := z.Bytes()
	zr, _ := gzip.NewReader(bytes.NewReader(data))
	var raw bytes.Buffer
	raw.ReadFrom(zr)
	b.SetBytes(int64(raw.Len()))
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	records := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		var d discard
		if _, err := (FASTQ{}).Convert(context.Background(), processing.Input{R: zr}, &d); err != nil {
			b.Fatal(err)
		}
		records += d.n
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(records), "B/record")
	b.ReportMetric(float64(len(data))*float64(b.N)/b.Elapsed().Seconds()/1e6, "gzMB/s")
}

// BenchmarkFASTQ is the same without gzip.
func BenchmarkFASTQ(b *testing.B) {
	var raw bytes.Buffer
	if _, err := gen.FASTQ(&raw, 16<<20, 150, 1); err != nil {
		b.Fatal(err)
	}
	data := raw.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d discard
		if _, err := (FASTQ{}).Convert(context.Background(), processing.Input{R: bytes.NewReader(data)}, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGeneratedFASTQ checks that the benchmark generator writes FASTQ this
// converter reads completely.
func TestGeneratedFASTQ(t *testing.T) {
	var z bytes.Buffer
	n, err := gen.FASTQGzip(&z, 256<<10, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&z)
	if err != nil {
		t.Fatal(err)
	}
	var d discard
	sum, err := (FASTQ{}).Convert(context.Background(), processing.Input{R: zr}, &d)
	if err != nil || int64(sum.Records) != n || d.n != sum.Records {
		t.Fatalf("err %v, %d records, generator wrote %d", err, sum.Records, n)
	}
}

// BenchmarkFASTA converts a 16 MiB FASTA of 10 kbp contigs wrapped at 60.
func BenchmarkFASTA(b *testing.B) {
	var buf bytes.Buffer
	line := []byte("ACGTTGCANNACGTGGCCAATTGGCCAATACGTACGTACGATCGATCGTAGCTAGCTAGC\n")
	for i := 0; buf.Len() < 16<<20; i++ {
		fmt.Fprintf(&buf, ">contig_%d len=10020\n", i)
		for j := 0; j < 167; j++ {
			buf.Write(line)
		}
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d discard
		if _, err := (FASTA{}).Convert(context.Background(), processing.Input{R: bytes.NewReader(data)}, &d); err != nil {
			b.Fatal(err)
		}
	}
}
