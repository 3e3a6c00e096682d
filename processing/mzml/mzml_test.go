package mzml

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"strings"

	"github.com/omicsomics/omics-worker/processing"
	"path/filepath"
	"testing"
)

func TestGoldenMzML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzML")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "proteomics", format: "mzml"})
	}
	runGolden(t, MzML{}, cases)
}

func TestGoldenMzXML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzXML")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "proteomics", format: "mzxml"})
	}
	runGolden(t, MzXML{}, cases)
}

func FuzzMzML(f *testing.F) { fuzzConverter(f, MzML{}, "testdata/*.mzML") }

func FuzzMzXML(f *testing.F) { fuzzConverter(f, MzXML{}, "testdata/*.mzXML") }

func TestRobustness(t *testing.T) {
	// robustness repeats the input, so give it a fragment that stays one
	// document: the wrapper element is opened here and never closed, which
	// only matters for the "truncated" and "read error" cases, which fail
	// before the end anyway.
	ctx := context.Background()
	doc := `<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="a"/></mzML>`
	if _, err := (MzML{}).Convert(ctx, processing.Input{R: strings.NewReader(doc)}, failWriter{}); !errors.Is(err, errStop) {
		t.Fatalf("writer error: got %v", err)
	}
	var b strings.Builder
	b.WriteString(`<mzML xmlns="http://psi.hupo.org/ms/mzml">`)
	for b.Len() < 1<<20 {
		b.WriteString(`<spectrum id="s"><cvParam name="scan start time" value="1"/></spectrum>`)
	}
	b.WriteString(`</mzML>`)
	big := b.String()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (MzML{}).Convert(cctx, processing.Input{R: strings.NewReader(big)}, &counter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v", err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(big))
	zw.Close()
	zr, _ := gzip.NewReader(bytes.NewReader(z.Bytes()[:z.Len()/2]))
	if _, err := (MzML{}).Convert(ctx, processing.Input{R: zr}, &counter{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated gzip: got %v", err)
	}
	var c counter
	sum, err := (MzML{}).Convert(ctx, processing.Input{R: strings.NewReader(big)}, &c)
	if err != nil || sum.Records != c.n || c.n < 10000 {
		t.Fatalf("big: %v %d %d", err, sum.Records, c.n)
	}
}

func TestTokenLimit(t *testing.T) {
	doc := `<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="a"><binary>` + strings.Repeat("QUFB", 100000) + `</binary></spectrum></mzML>`
	_, err := (MzML{MaxTokenBytes: 64 << 10}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &counter{})
	if !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("got %v, want ErrTokenTooLarge", err)
	}
	var pe *processing.ParseError
	if !errors.As(err, &pe) || pe.Line != 1 {
		t.Fatalf("want a ParseError at line 1, got %#v", err)
	}
	if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &counter{}); err != nil {
		t.Fatalf("default limit: %v", err)
	}
}
