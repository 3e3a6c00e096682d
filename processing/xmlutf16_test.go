package processing_test

import (
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/omicsomics/omics-worker/processing"
)

// Issue 9 item 18: a UTF-16 mzML (with or without BOM) was refused as
// "looks binary" before reaching the converter, which decodes it.
func TestConvertUTF16MzML(t *testing.T) {
	doc := `<?xml version="1.0" encoding="UTF-16"?>` + "\n" +
		`<mzML xmlns="http://psi.hupo.org/ms/mzml"><spectrum id="é1"/></mzML>` + "\n"
	for _, c := range []struct {
		name string
		in   []byte
	}{
		{"le-bom", utf16Bytes(doc, false, true)},
		{"be-bom", utf16Bytes(doc, true, true)},
		{"le", utf16Bytes(doc, false, false)},
	} {
		res, out := convertString(t, "x.mzML", string(c.in), processing.Options{})
		if res.Err != nil || res.Reason != "" || !strings.Contains(out, `"spectrum_id": "\u00e91"`) {
			t.Errorf("%s: %v %q\n%s", c.name, res.Err, res.Reason, out)
		}
	}
	// Other formats keep the binary check (their converters read UTF-8).
	res, _ := convertString(t, "x.vcf", string(utf16Bytes("##fileformat=VCFv4.2\n", false, false)), processing.Options{})
	if res.Err == nil {
		t.Errorf("UTF-16 VCF without BOM: converted")
	}
}

func utf16Bytes(s string, bigEndian, bom bool) []byte {
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	var b []byte
	for _, u := range units {
		if bigEndian {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}
