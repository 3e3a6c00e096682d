package processing_test

import (
	"strings"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/internal/gen/enctest"
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
		{"le-bom", enctest.UTF16(doc, false, true)},
		{"be-bom", enctest.UTF16(doc, true, true)},
		{"le", enctest.UTF16(doc, false, false)},
	} {
		res, out := convertString(t, "x.mzML", string(c.in), processing.Options{})
		if res.Err != nil || res.Reason != "" || !strings.Contains(out, `"spectrum_id": "\u00e91"`) {
			t.Errorf("%s: %v %q\n%s", c.name, res.Err, res.Reason, out)
		}
	}
	// Other formats keep the binary check (their converters read UTF-8).
	res, _ := convertString(t, "x.vcf", string(enctest.UTF16("##fileformat=VCFv4.2\n", false, false)), processing.Options{})
	if res.Err == nil {
		t.Errorf("UTF-16 VCF without BOM: converted")
	}
}
