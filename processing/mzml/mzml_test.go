package mzml

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/omicsomics/omics-worker/processing"
	"path/filepath"
	"testing"
)

func TestGoldenMzML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzML")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "proteomics", Format: "mzml"})
	}
	convtest.Golden(t, MzML{}, cases)
}

func TestGoldenMetabolomicsMzML(t *testing.T) {
	files, _ := filepath.Glob("testdata/metabolomics/*.mzML")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "metabolomics", Format: "mzml"})
	}
	if len(cases) == 0 {
		t.Fatal("no inputs")
	}
	convtest.Golden(t, MzML{Metabolomics: true}, cases)
}

func TestGoldenMzXML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzXML")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "proteomics", Format: "mzxml"})
	}
	convtest.Golden(t, MzXML{}, cases)
}

func FuzzMzML(f *testing.F) { convtest.Fuzz(f, MzML{}, "testdata/*.mzML") }

func FuzzMzXML(f *testing.F) { convtest.Fuzz(f, MzXML{}, "testdata/*.mzXML") }

func TestRobustness(t *testing.T) {
	// robustness repeats the input, so give it a fragment that stays one
	// document: the wrapper element is opened here and never closed, which
	// only matters for the "truncated" and "read error" cases, which fail
	// before the end anyway.
	ctx := context.Background()
	doc := `<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="a"/></mzML>`
	if _, err := (MzML{}).Convert(ctx, processing.Input{R: strings.NewReader(doc)}, convtest.FailWriter{}); !errors.Is(err, convtest.ErrStop) {
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
	if _, err := (MzML{}).Convert(cctx, processing.Input{R: strings.NewReader(big)}, &convtest.Counter{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v", err)
	}
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(big))
	zw.Close()
	zr, _ := gzip.NewReader(bytes.NewReader(z.Bytes()[:z.Len()/2]))
	if _, err := (MzML{}).Convert(ctx, processing.Input{R: zr}, &convtest.Counter{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated gzip: got %v", err)
	}
	var c convtest.Counter
	sum, err := (MzML{}).Convert(ctx, processing.Input{R: strings.NewReader(big)}, &c)
	if err != nil || sum.Records != c.N || c.N < 10000 {
		t.Fatalf("big: %v %d %d", err, sum.Records, c.N)
	}
}

func TestTokenLimit(t *testing.T) {
	doc := `<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="a"><binary>` + strings.Repeat("Q-F-", 100000) + `</binary></spectrum></mzML>`
	_, err := (MzML{MaxTokenBytes: 64 << 10}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &convtest.Counter{})
	if !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("got %v, want ErrTokenTooLarge", err)
	}
	var pe *processing.ParseError
	if !errors.As(err, &pe) || pe.Line != 1 {
		t.Fatalf("want a ParseError at line 1, got %#v", err)
	}
	if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &convtest.Counter{}); err != nil {
		t.Fatalf("default limit: %v", err)
	}
}

// genXML builds a random, mostly well-formed document from elements named
// in names, with random namespaces and attributes.
func genXML(r *rand.Rand, root string, names, attrs []string) []byte {
	var b strings.Builder
	if r.IntN(3) == 0 {
		b.WriteString(convtest.Pick(r, []string{"", "", "", "\n", " ", "\ufeff"}) + `<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	}
	if r.IntN(8) == 0 {
		b.WriteString(convtest.Pick(r, []string{`<!DOCTYPE x>`, `<!DOCTYPE x [<!ENTITY e "v">]>`, "<!-- pre -->", "<?pi?>", "x", "\x01"}))
	}
	nsDecl := convtest.Pick(r, []string{``, ` xmlns="http://psi.hupo.org/ms/mzml"`, ` xmlns="urn:x"`,
		` xmlns="http://sashimi.sourceforge.net/schema_revision/mzXML_3.2"`, ` xmlns:p="http://psi.hupo.org/ms/mzml"`})
	b.WriteString("<" + root + nsDecl + ">")
	var walk func(depth int)
	walk = func(depth int) {
		for i, n := 0, r.IntN(4); i < n; i++ {
			name := convtest.Pick(r, names)
			b.WriteString("<" + name)
			if r.IntN(6) == 0 {
				b.WriteString(convtest.Pick(r, []string{` xmlns=""`, ` xmlns="urn:x"`, ` xmlns="http://psi.hupo.org/ms/mzml"`}))
			}
			for j, m := 0, r.IntN(4); j < m; j++ {
				b.WriteString(" " + convtest.Pick(r, attrs) + `="` + convtest.Pick(r, []string{"1", "", "2", "PT1S", "a&amp;b", "é", "x y", "a\tb", "x\r\ny", "\r", "\n z", "&#9;t&#10;", "&#13;\r\n", "q>r"}) + `"`)
			}
			if depth > 3 || r.IntN(3) == 0 {
				b.WriteString("/>")
				continue
			}
			b.WriteString(">")
			if r.IntN(12) == 0 {
				b.WriteString(convtest.Pick(r, []string{"\x01", "&foo;", "&#0;", "&#x10FFFF;", "&e;", "\ufffe", "]]>", "&", "<", "\x7f", "\u0085"}))
			}
			if r.IntN(4) == 0 {
				b.WriteString(convtest.Pick(r, []string{"text", "QUFBQQ==", " ", "<!-- c=\"\t -->", "<![CDATA[x<y\"]]]>", "<?pi a=\"\t\"?>", "a\r\nb\tc"}))
			}
			walk(depth + 1)
			b.WriteString("</" + name + ">")
		}
	}
	walk(0)
	b.WriteString("</" + root + ">")
	if r.IntN(10) == 0 {
		b.WriteString(convtest.Pick(r, []string{"\n", "<x/>", "junk", "<!-- end -->"}))
	}
	return []byte(b.String())
}

func TestDifferentialMzML(t *testing.T) {
	names := []string{"spectrum", "cvParam", "p:spectrum", "p:cvParam", "scan", "run", "binary", "userParam", "p:a:b", "é", "1x", "xml:x", "xmlns:q"}
	attrs := []string{"id", "msLevel", "name", "value", "p:id", "index", "xml:id", "xmlns:p", "xmlns:x", "a:b:c", "é"}
	names2 := []string{"scan start time", "Base Peak m/z", "base peak intensity", "TOTAL ION CURRENT", "ms level", "x"}
	convtest.Differential(t, MzML{}, "proteomics", "mzml", ".mzML", 300, func(r *rand.Rand) []byte {
		doc := genXML(r, convtest.Pick(r, []string{"mzML", "indexedmzML", "spectrum"}), names, attrs)
		// Give cvParam names that match the rules.
		s := string(doc)
		for strings.Contains(s, `name="`) && r.IntN(5) > 0 {
			s = strings.Replace(s, `name="`, `name=`+"\x00"+convtest.Pick(r, names2)+" ", 1)
		}
		return []byte(strings.ReplaceAll(s, "name=\x00", `name="`))
	}, nil)
}

func TestDifferentialMzXML(t *testing.T) {
	names := []string{"scan", "msRun", "peaks", "p:scan", "precursorMz"}
	attrs := []string{"num", "msLevel", "retentionTime", "basePeakMz", "basePeakIntensity", "totIonCurrent", "p:num"}
	convtest.Differential(t, MzXML{}, "proteomics", "mzxml", ".mzXML", 300, func(r *rand.Rand) []byte {
		return genXML(r, convtest.Pick(r, []string{"mzXML", "scan"}), names, attrs)
	}, nil)
}

func TestDepthLimit(t *testing.T) {
	doc := strings.Repeat("<a>", MaxDepth+1)
	_, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &convtest.Counter{})
	var pe *processing.ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "nested deeper") {
		t.Fatalf("got %v", err)
	}
	ok := strings.Repeat("<a>", MaxDepth) + strings.Repeat("</a>", MaxDepth)
	if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(ok)}, &convtest.Counter{}); err != nil {
		t.Fatal(err)
	}
}
