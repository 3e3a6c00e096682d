package mzml

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
)

type discard struct{ n int }

func (d *discard) WriteRecord(*processing.Record) error { d.n++; return nil }

// spectraReader streams an indexedmzML document with n spectra, each with
// two base64 arrays of arrayLen bytes, without holding it in memory.
type spectraReader struct {
	n, i     int
	arrayLen int
	buf      bytes.Buffer
	state    int
}

func (s *spectraReader) Read(p []byte) (int, error) {
	for s.buf.Len() < len(p) {
		switch {
		case s.state == 0:
			s.buf.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n" +
				`<indexedmzML xmlns="http://psi.hupo.org/ms/mzml"><mzML><run id="r"><spectrumList count="0">` + "\n")
			s.state = 1
		case s.state == 1 && s.i < s.n:
			arr := strings.Repeat("AAAAAAAAAAA=", s.arrayLen/12)
			fmt.Fprintf(&s.buf, `<spectrum index="%d" id="scan=%d" defaultArrayLength="100">
 <cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="%d"/>
 <cvParam cvRef="MS" accession="MS:1000504" name="base peak m/z" value="%d.25"/>
 <cvParam cvRef="MS" accession="MS:1000505" name="base peak intensity" value="1e4"/>
 <cvParam cvRef="MS" accession="MS:1000285" name="total ion current" value="5e5"/>
 <scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1000016" name="scan start time" value="%d.5" unitName="second"/></scan></scanList>
 <binaryDataArrayList count="2">
  <binaryDataArray encodedLength="%d"><cvParam name="m/z array"/><binary>%s</binary></binaryDataArray>
  <binaryDataArray encodedLength="%d"><cvParam name="intensity array"/><binary>%s</binary></binaryDataArray>
 </binaryDataArrayList>
</spectrum>
`, s.i, s.i+1, 1+s.i%2, 100+s.i%900, s.i, len(arr), arr, len(arr), arr)
			s.i++
		case s.state == 1:
			s.buf.WriteString("</spectrumList></run></mzML><indexListOffset>0</indexListOffset></indexedmzML>\n")
			s.state = 2
		default:
			if s.buf.Len() == 0 {
				return 0, io.EOF
			}
			return s.buf.Read(p)
		}
	}
	return s.buf.Read(p)
}

// BenchmarkMzML streams 20 000 spectra (~2 KiB of base64 each). Reports
// MB/s and heap bytes allocated per spectrum.
func BenchmarkMzML(b *testing.B) {
	const n = 20000
	var size int64
	{
		m, _ := io.Copy(io.Discard, &spectraReader{n: n, arrayLen: 1024})
		size = m
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	records := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d discard
		if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: &spectraReader{n: n, arrayLen: 1024}}, &d); err != nil {
			b.Fatal(err)
		}
		records += d.n
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(records), "B/record")
}

// TestMzMLMemoryFlat checks that the live heap after streaming many
// spectra does not depend on their number (no per-spectrum retention).
func TestMzMLMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("memory check skipped in -short mode")
	}
	heapAfter := func(n int) uint64 {
		var peak uint64
		w := &peakWriter{every: 500, peak: &peak}
		if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: &spectraReader{n: n, arrayLen: 24}}, w); err != nil {
			t.Fatal(err)
		}
		return peak
	}
	small, large := heapAfter(1000), heapAfter(8000)
	if large > small+1<<20 {
		t.Fatalf("live heap grows with spectra: %d B for 1000, %d B for 8000", small, large)
	}
}

// peakWriter samples the live heap (after GC) every `every` records.
type peakWriter struct {
	n, every int
	peak     *uint64
}

func (p *peakWriter) WriteRecord(*processing.Record) error {
	p.n++
	if p.n%p.every == 0 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > *p.peak {
			*p.peak = ms.HeapAlloc
		}
	}
	return nil
}

// BenchmarkHostile measures the hostile shapes of issue 9 item 7 (one
// element with 100 000 attributes; 60 000 prefixes declared on the root
// with 60 000 elements): both were quadratic before (28 s and 13 s).
func BenchmarkHostile(b *testing.B) {
	for _, c := range []struct {
		name string
		doc  string
	}{
		{"attrs100k", manyAttrs(100000)},
		{"prefixes60k", manyPrefixes(60000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.doc)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(c.doc)}, &discard{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
