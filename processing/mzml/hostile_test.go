package mzml

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
)

// Hostile inputs of issue 9 (items 7 and 8): generated here, never
// committed as large files. Small members of each class are fuzz seeds in
// testdata/ (hostile_*.mzML / .mzXML).

// manyAttrs is one <spectrum> with n attributes a0..a(n-1).
func manyAttrs(n int) string {
	var b strings.Builder
	b.WriteString(`<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="s"`)
	for i := range n {
		fmt.Fprintf(&b, ` a%d="1"`, i)
	}
	b.WriteString(`/></mzML>`)
	return b.String()
}

// manyPrefixes declares n prefixes on the root and holds n spectra.
func manyPrefixes(n int) string {
	var b strings.Builder
	b.WriteString(`<mzML xmlns="http://psi.hupo.org/ms/mzml"`)
	for i := range n {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:x%d"`, i, i)
	}
	b.WriteString(`>`)
	for i := range n {
		fmt.Fprintf(&b, `<spectrum id="s%d"/>`, i)
	}
	b.WriteString(`</mzML>`)
	return b.String()
}

// cancelAtEOF cancels its context once the whole input was delivered.
type cancelAtEOF struct {
	r      *strings.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.r.Len() == 0 {
		c.cancel()
	}
	return n, err
}

// startCounter counts the records written.
type startCounter struct{ n int }

func (s *startCounter) WriteRecord(*processing.Record) error { s.n++; return nil }

// Before the fix the duplicate check compared every pair of the 100 000
// attributes (28 s of CPU) without looking at the context: a cancellation
// arriving while the element was checked was only seen afterwards, once
// the element had been handed on.
func TestHostileManyAttributesHonoursCancel(t *testing.T) {
	doc := manyAttrs(100000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var c startCounter
	_, err := (MzML{}).Convert(ctx, processing.Input{R: &cancelAtEOF{r: strings.NewReader(doc), cancel: cancel}}, &c)
	if !errors.Is(err, context.Canceled) || c.n != 0 {
		t.Fatalf("got %v with %d records, want context.Canceled before the element is handled", err, c.n)
	}
	// Without cancellation it converts (Python does too).
	sum, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &c)
	if err != nil || sum.Records != 1 {
		t.Fatalf("got %v, %d records", err, sum.Records)
	}
}

func TestHostileManyAttributesDuplicate(t *testing.T) {
	for _, n := range []int{3, smallAttrs, smallAttrs + 1, 5000} {
		doc := strings.Replace(manyAttrs(n), `/></mzML>`, ` a0="2"/></mzML>`, 1)
		_, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &convtest.Counter{})
		var pe *processing.ParseError
		if !errors.As(err, &pe) || pe.Msg != `duplicate attribute "a0" on <spectrum>` {
			t.Fatalf("%d attributes: got %v", n, err)
		}
	}
}

// Before the fix the namespace scope was scanned for every element
// (quadratic), and a prefix equal to the URI of another binding counted as
// bound; expat refuses it as an unbound prefix.
func TestHostileNamespaces(t *testing.T) {
	sum, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(manyPrefixes(20000))}, &convtest.Counter{})
	if err != nil || sum.Records != 20000 {
		t.Fatalf("got %v, %d records", err, sum.Records)
	}
	for _, doc := range []string{
		`<mzML xmlns:p="q"><q:spectrum/></mzML>`,
		`<mzML xmlns:p="q"><spectrum q:id="1"/></mzML>`,
		`<mzML><a xmlns:p="urn:p"/><p:b/></mzML>`, // out of scope after </a>
	} {
		_, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &convtest.Counter{})
		var pe *processing.ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "unbound namespace prefix") {
			t.Errorf("%s: got %v, want an unbound prefix error", doc, err)
		}
	}
	// Shadowed and restored bindings.
	doc := `<p:mzML xmlns:p="http://psi.hupo.org/ms/mzml"><p:a xmlns:p="urn:other"><p:spectrum id="no"/></p:a><p:spectrum id="yes"/></p:mzML>`
	var c convtest.Collector
	if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &c); err != nil || len(c.Recs) != 1 || c.Recs[0].ID != "yes" {
		t.Fatalf("got %v, %+v", err, c.Recs)
	}
}

// attrStream is an mzXML document whose scan has one attribute value of n
// bytes, streamed without holding it.
func attrStream(n int64) io.Reader {
	return io.MultiReader(
		strings.NewReader(`<mzXML xmlns="http://sashimi.sourceforge.net/schema_revision/mzXML_3.2"><msRun>`+"\n\n"+`<scan num="1" retentionTime="`),
		io.LimitReader(repeatReader('A'), n),
		strings.NewReader(`"/></msRun></mzXML>`))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// Before the fix a 60 MiB attribute (a 61 KB .gz) was accepted and peaked
// at 266 MB of RSS; it is now refused, with its line, before encoding/xml
// buffers more than the limit.
func TestHostileHugeAttribute(t *testing.T) {
	_, err := (MzXML{}).Convert(context.Background(), processing.Input{R: attrStream(60 << 20)}, &convtest.Counter{})
	var pe *processing.ParseError
	if !errors.Is(err, ErrTokenTooLarge) || !errors.As(err, &pe) || pe.Line != 3 ||
		!strings.Contains(pe.Msg, "<scan ...> is longer than 16 MiB") {
		t.Fatalf("got %v", err)
	}
	// At the limit: accepted.
	sum, err := (MzXML{MaxTagBytes: 1 << 20}).Convert(context.Background(), processing.Input{R: attrStream(1<<20 - 100)}, &convtest.Counter{})
	if err != nil || sum.Records != 1 {
		t.Fatalf("got %v, %d records", err, sum.Records)
	}
	_, err = (MzXML{MaxTagBytes: 1 << 20}).Convert(context.Background(), processing.Input{R: attrStream(1 << 20)}, &convtest.Counter{})
	if !errors.Is(err, ErrTokenTooLarge) {
		t.Fatalf("got %v", err)
	}
}

func TestHostileAttributeCount(t *testing.T) {
	_, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(manyAttrs(MaxAttrs))}, &convtest.Counter{})
	var pe *processing.ParseError
	if !errors.Is(err, ErrTokenTooLarge) || !errors.As(err, &pe) || pe.Line != 1 ||
		!strings.Contains(pe.Msg, fmt.Sprintf("<spectrum ...> has more than %d attributes", MaxAttrs)) {
		t.Fatalf("got %v", err)
	}
	if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(manyAttrs(MaxAttrs - 1))}, &convtest.Counter{}); err != nil {
		t.Fatal(err)
	}
}

// Issue 9 item 16: an apostrophe in a comment of the DOCTYPE internal
// subset opened a never-ending "literal" in the pre-filter, which then
// stopped normalising attribute values for the rest of the file.
func TestDoctypeSubsetKeepsNormalisation(t *testing.T) {
	for _, subset := range []string{
		`<!-- don't -->`,
		`<!-- "a' -- -->`,
		`<?pi it's "odd" <a> ?>`,
		`<!ENTITY e "]>'">`,
		`<!ATTLIST run note CDATA 'a"]>'>`,
		`<!-- ' --><!ENTITY f 'x"y'><?p '?>`,
	} {
		doc := "<!DOCTYPE mzML [\n" + subset + "\n]>\n" +
			`<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="s` + "\t" + `1"/></mzML>`
		var c convtest.Collector
		if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(doc)}, &c); err != nil || len(c.Recs) != 1 || c.Recs[0].ID != "s 1" {
			t.Errorf("%s: got %v, %+v; want one spectrum \"s 1\"", subset, err, c.Recs)
		}
	}
}
