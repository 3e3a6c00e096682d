package gen

import (
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

func TestDeterministicAndSized(t *testing.T) {
	var a, b bytes.Buffer
	n1, err := VCF(&a, 100<<10, 7)
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := VCF(&b, 100<<10, 7)
	if n1 != n2 || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("VCF not deterministic")
	}
	if a.Len() < 100<<10 || a.Len() > 100<<10+512 {
		t.Fatalf("VCF size %d", a.Len())
	}
	var z bytes.Buffer
	if _, err := FASTQGzip(&z, 50<<10, 100, 1); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&z)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || len(raw) < 50<<10 {
		t.Fatalf("FASTQ.gz: %v, %d bytes", err, len(raw))
	}
}
