package mzml

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"github.com/omicsomics/omics-worker/processing/internal/gen/enctest"
)

// Issue 9 item 18: declarations and encodings Python (expat) reads. The
// expected ids are those of xml.etree.ElementTree on the same bytes.
func TestEncodings(t *testing.T) {
	body := func(id string) string {
		return `<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="` + id + `"/></mzML>`
	}
	doc := func(decl, id string) []byte { return []byte(decl + "\n" + body(id)) }
	utf16Doc := `<?xml version="1.0" encoding="UTF-16"?>` + "\n" + body("é😀\t.")
	for _, c := range []struct {
		name   string
		in     []byte
		want   string // spectrum id; "" when an error is expected
		errHas string
		line   int
	}{
		{"UTF8 spelling", doc(`<?xml version="1.0" encoding="UTF8"?>`, "abc"), "abc", "", 0},
		{"UTF8 spelling, non-ASCII (Python fails)", doc(`<?xml version="1.0" encoding="UTF8"?>`, "é"), "é", "", 0},
		{"utf_8", doc(`<?xml version='1.0' encoding='utf_8'?>`, "é"), "é", "", 0},
		{"version 1.1", doc(`<?xml version="1.1"?>`, "a"), "a", "", 0},
		{"version 2.0 with encoding and standalone", doc(`<?xml version="2.0" encoding="utf-8" standalone="yes"?>`, "a"), "a", "", 0},
		{"windows-1252", doc(`<?xml version="1.0" encoding="windows-1252"?>`, "\x80\x9f\xe9"), "€Ÿé", "", 0},
		{"cp1252", doc(`<?xml version="1.0" encoding="CP1252"?>`, "\x8a"), "Š", "", 0},
		{"windows-1252 undefined byte", doc(`<?xml version="1.0" encoding="windows-1252"?>`, "\n\x81"), "", "byte 0x81 is not a character in windows-1252", 3},
		{"latin-1", doc(`<?xml version="1.0" encoding="latin-1"?>`, "\x80\xe9"), "\u0080é", "", 0},
		{"us-ascii", doc(`<?xml version="1.0" encoding="US-ASCII"?>`, "\xe9"), "", "byte 0xe9 is not a character in US-ASCII", 2},
		{"unsupported", doc(`<?xml version="1.0" encoding="iso-8859-15"?>`, "\xa4"), "", `unsupported XML encoding "iso-8859-15"`, 1},
		{"UTF-16 named in an 8-bit file", doc(`<?xml version="1.0" encoding="UTF-16"?>`, "a"), "", "the file is not UTF-16", 1},
		{"multi-line declaration keeps lines", doc("<?xml version=\"1.1\"\n encoding=\"cp1252\"\n?>", "\n\x81"), "", "0x81", 5},
		{"UTF-16LE BOM", enctest.UTF16(utf16Doc, false, true), "é😀 .", "", 0},
		{"UTF-16BE BOM", enctest.UTF16(utf16Doc, true, true), "é😀 .", "", 0},
		{"UTF-16LE no BOM", enctest.UTF16(strings.Replace(utf16Doc, "UTF-16", "UTF-16LE", 1), false, false), "é😀 .", "", 0},
		{"UTF-16BE no BOM, no declaration", enctest.UTF16(body("é"), true, false), "é", "", 0},
		{"UTF-16 declared UTF-8", enctest.UTF16(strings.Replace(utf16Doc, "UTF-16", "UTF-8", 1), false, true), "", `names the encoding "UTF-8" but the file is UTF-16`, 1},
		{"UTF-16 unpaired surrogate", append(enctest.UTF16(`<mzML><spectrum id="`, false, true), 0x3d, 0xd8, '"', 0, '/', 0, '>', 0), "", "unpaired UTF-16 surrogate", 1},
		{"UTF-16 odd length", append(enctest.UTF16(body("a"), false, true), '\n'), "", "ends in the middle of a character", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, oneByte := range []bool{false, true} {
				var r = bytes.NewReader(c.in)
				var in processing.Input
				in.R = r
				if oneByte {
					in.R = iotest.OneByteReader(r)
				}
				var col convtest.Collector
				_, err := (MzML{}).Convert(context.Background(), in, &col)
				if c.want != "" {
					if err != nil || len(col.Recs) != 1 || col.Recs[0].ID != c.want {
						t.Fatalf("got %v, %+v; want id %q", err, col.Recs, c.want)
					}
					continue
				}
				var pe *processing.ParseError
				if !errors.As(err, &pe) || !strings.Contains(pe.Msg, c.errHas) || pe.Line != c.line {
					t.Fatalf("got %#v (%v); want a line %d error containing %q", err, err, c.line, c.errHas)
				}
			}
		})
	}
}
