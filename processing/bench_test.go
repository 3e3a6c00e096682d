package processing_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/omicsomics/omics-worker/internal/cpubench"
	"github.com/omicsomics/omics-worker/processing"
	_ "github.com/omicsomics/omics-worker/processing/all"
	"github.com/omicsomics/omics-worker/processing/internal/gen"
	"github.com/omicsomics/omics-worker/processing/internal/matrixgen"
)

func benchConvert(b *testing.B, delim byte, name string, size int64) {
	var in bytes.Buffer
	if _, err := matrixgen.Matrix(&in, delim, 12, size, 1); err != nil {
		b.Fatal(err)
	}
	data := in.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	dir := b.TempDir()
	c0 := cpubench.Now()
	defer func() { cpubench.Report(b, c0, int64(len(data))) }()
	for b.Loop() {
		res, err := processing.Convert(context.Background(), bytes.NewReader(data), io.Discard,
			processing.Options{Name: name, Size: int64(len(data)), TempDir: dir})
		if err != nil || !res.Converted {
			b.Fatalf("%v %+v", err, res)
		}
	}
}

// The matrix has no sniffing keyword: a transcriptomics CSV (strings).
func BenchmarkConvertCSVMatrix(b *testing.B) { benchConvert(b, ',', "m.csv", 8<<20) }

// TSV: every cell goes through Python float() rules.
func BenchmarkConvertTSVMatrix(b *testing.B) { benchConvert(b, '\t', "m.tsv", 8<<20) }

func BenchmarkDocWriter(b *testing.B) {
	vals := []processing.Field{{Key: "CHROM", Value: "chr1"}, {Key: "POS", Value: int64(123456)}, {Key: "ID", Value: nil},
		{Key: "REF", Value: "A"}, {Key: "ALT", Value: "G"}, {Key: "QUAL", Value: 30.5}, {Key: "FILTER", Value: "PASS"},
		{Key: "INFO", Value: "DP=10;AF=0.5"}, {Key: "FORMAT", Value: "GT"}, {Key: "SAMPLE", Value: "0/1"}}
	rec := &processing.Record{ID: "chr1:123456:A:G", Values: vals}
	dw := processing.NewDocWriter(processing.DocOptions{TempDir: b.TempDir()})
	defer dw.Close()
	b.ReportAllocs()
	start := dw.SpooledBytes()
	for b.Loop() {
		if err := dw.WriteRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
	if b.N > 0 {
		b.SetBytes((dw.SpooledBytes() - start) / int64(b.N))
	}
}

func vcfBenchData(b *testing.B) []byte {
	var in bytes.Buffer
	if _, err := gen.VCF(&in, 16<<20, 1); err != nil {
		b.Fatal(err)
	}
	return in.Bytes()
}

// BenchmarkConvertVCF is the whole engine on a generated 16 MiB VCF, the
// document discarded: spooled (the records go through the spool, which
// moves to a file past 4 MiB) and streamed (Options.Stream).
func BenchmarkConvertVCF(b *testing.B) {
	data := vcfBenchData(b)
	for _, stream := range []bool{false, true} {
		name := "spool"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			dir := b.TempDir()
			var out int64
			c0 := cpubench.Now()
			for b.Loop() {
				res, err := processing.Convert(context.Background(), bytes.NewReader(data), io.Discard,
					processing.Options{Name: "b.vcf", Size: int64(len(data)), TempDir: dir, Stream: stream})
				if err != nil || !res.Converted {
					b.Fatalf("%v %+v", err, res)
				}
				out = res.BytesOut
			}
			cpubench.Report(b, c0, int64(len(data)))
			b.ReportMetric(float64(out)/float64(len(data)), "out/in")
		})
	}
}

// BenchmarkCopyLimit is the limit for the writer: a plain buffered copy
// of the bytes of the VCF document (bufio 256 KiB into io.Discard).
func BenchmarkCopyLimit(b *testing.B) {
	data := vcfBenchData(b)
	var doc bytes.Buffer
	if _, err := processing.Convert(context.Background(), bytes.NewReader(data), &doc,
		processing.Options{Name: "b.vcf", Size: int64(len(data))}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(doc.Len()))
	for b.Loop() {
		bw := bufio.NewWriterSize(io.Discard, 256<<10)
		r := bytes.NewReader(doc.Bytes())
		var p [64 << 10]byte
		for {
			n, err := r.Read(p[:])
			bw.Write(p[:n])
			if err != nil {
				break
			}
		}
		bw.Flush()
	}
}
