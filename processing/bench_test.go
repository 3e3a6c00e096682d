package processing_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
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
