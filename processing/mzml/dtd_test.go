package mzml

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
)

// Issue 9 item 18: DTD attribute defaults. want is [id, ms_level,
// retention_time] per spectrum as xml.etree.ElementTree (expat) gives them
// for the same document.
func TestDTDDefaults(t *testing.T) {
	const ns = "http://psi.hupo.org/ms/mzml"
	for _, c := range []struct {
		name, doc string
		want      [][3]string
	}{
		{"default", `<!DOCTYPE mzML [<!ATTLIST spectrum msLevel CDATA "2">]><mzML xmlns="` + ns + `"><spectrum id="a"/><spectrum id="b" msLevel="3"/></mzML>`,
			[][3]string{{"a", "2", ""}, {"b", "3", ""}}},
		{"fixed", `<!DOCTYPE mzML [<!ATTLIST spectrum id CDATA #FIXED "x" msLevel CDATA #REQUIRED>]><mzML xmlns="` + ns + `"><spectrum/></mzML>`,
			[][3]string{{"x", "1", ""}}},
		{"xmlns", `<!DOCTYPE mzML [<!ATTLIST mzML xmlns CDATA #FIXED "` + ns + `">]><mzML><spectrum id="a"/></mzML>`,
			[][3]string{{"a", "1", ""}}},
		{"prefixed", `<!DOCTYPE mzML [<!ATTLIST p:spectrum id CDATA "pd">]><mzML xmlns="` + ns + `" xmlns:p="` + ns + `"><p:spectrum/><spectrum/></mzML>`,
			[][3]string{{"pd", "1", ""}, {"", "1", ""}}},
		{"collapse", `<!DOCTYPE mzML [<!ATTLIST spectrum id ID #IMPLIED msLevel (1|2) "2">]><mzML xmlns="` + ns + `"><spectrum id="  a   b "/></mzML>`,
			[][3]string{{"a b", "2", ""}}},
		{"normalise", "<!DOCTYPE mzML [<!ATTLIST cvParam value CDATA \" 1\t2\r\n3 \" name CDATA 'scan start time'>\n<!ATTLIST spectrum id NMTOKEN \" &#65;&amp;  z \">]><mzML xmlns=\"" + ns + "\"><spectrum><cvParam/></spectrum></mzML>",
			[][3]string{{"A& z", "1", " 1 2 3 "}}},
		{"first wins", `<!DOCTYPE mzML [<!ATTLIST spectrum id CDATA "one"><!ATTLIST spectrum id CDATA "two" msLevel CDATA "4">]><mzML xmlns="` + ns + `"><spectrum/></mzML>`,
			[][3]string{{"one", "4", ""}}},
		{"other declarations skipped", `<!DOCTYPE mzML SYSTEM "x[y].dtd" [<!ELEMENT mzML (spectrum)*><!ENTITY e "<!ATTLIST spectrum id CDATA 'no'>"><?pi <!ATTLIST x?>%pe;<!NOTATION n SYSTEM "n">]><mzML xmlns="` + ns + `"><spectrum id="a"/></mzML>`,
			[][3]string{{"a", "1", ""}}},
		{"after a parameter-entity reference", `<!DOCTYPE mzML [<!ENTITY % pe "">%pe;<!ATTLIST spectrum id CDATA "d">]><mzML xmlns="` + ns + `"><spectrum/></mzML>`,
			[][3]string{{"", "1", ""}}},
		{"after a parameter-entity reference, standalone", `<?xml version="1.0" standalone="yes"?><!DOCTYPE mzML [<!ENTITY % pe SYSTEM "x">%pe;<!ATTLIST spectrum id CDATA "d">]><mzML xmlns="` + ns + `"><spectrum/></mzML>`,
			[][3]string{{"d", "1", ""}}},
	} {
		var col convtest.Collector
		if _, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(c.doc)}, &col); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got [][3]string
		for _, r := range col.Recs {
			got = append(got, [3]string{r.Values[0].Value.(string), r.Values[1].Value.(string), r.Values[2].Value.(string)})
		}
		if len(got) != len(c.want) || (len(got) > 0 && !equalRows(got, c.want)) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func equalRows(a, b [][3]string) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// What is not supported is refused with the reason, never converted
// differently: a general entity in a default value (Python expands it),
// and more attribute declarations than MaxDTDAttrs.
func TestDTDDefaultsRefused(t *testing.T) {
	many := strings.Repeat(`<!ATTLIST spectrum a CDATA "1">`, 10) + "<!ATTLIST spectrum" + strings.Repeat(" a CDATA 'x'", MaxDTDAttrs) + ">"
	for _, c := range []struct{ doc, msg string }{
		{`<!DOCTYPE mzML [<!ENTITY e "EE"><!ATTLIST spectrum id CDATA "&e;">]><mzML/>`, "the entity reference &e; is not supported in a default value"},
		{`<!DOCTYPE mzML [` + many + `]><mzML/>`, "more than 1024 attribute declarations"},
		{`<!DOCTYPE mzML [<!ATTLIST spectrum id CDATA>]><mzML/>`, "malformed default of attribute id in ATTLIST spectrum"},
	} {
		_, err := (MzML{}).Convert(context.Background(), processing.Input{R: strings.NewReader(c.doc)}, &convtest.Counter{})
		var pe *processing.ParseError
		if !errors.As(err, &pe) || !strings.Contains(pe.Msg, c.msg) || pe.Line != 1 {
			t.Errorf("got %v, want a line 1 error containing %q", err, c.msg)
		}
	}
}
