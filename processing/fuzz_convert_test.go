package processing_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"testing"

	"github.com/omicsomics/omics-worker/processing"
)

// FuzzConvert runs the whole Convert path (gzip, detection, the binary and
// UTF-16 checks, the converters) on a name and content. Its corpus in
// testdata/fuzz/FuzzConvert holds the classes of issue 9: gzip members
// followed by NUL padding or garbage, UTF-8 BOMs before FASTA/FASTQ/MGF,
// UTF-16/UTF-32 text, Python-lower-casing edge cases (U+0130), wide rows.
func FuzzConvert(f *testing.F) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(s))
		zw.Close()
		return b.Bytes()
	}
	f.Add("x.tsv.gz", append(gz("gene\ts1\nA\t1\n"), 0, 0, 0))
	f.Add("x.vcf.gz", append(gz("##fileformat=VCFv4.2\n"), "\x00\x00garbage"...))
	f.Add("x.fasta", []byte("\ufeff>s1 d\nACGT\n"))
	f.Add("x.fastq", []byte("\ufeff@r\nACGT\n+\nIIII\n"))
	f.Add("x", []byte("\ufeffBEGIN IONS\n1 2\nEND IONS\n"))
	f.Add("x.csv", []byte("\xff\xfeg\x00,\x00s\x00\n\x00"))
	f.Add("x.txt", []byte("g\x00\t\x00s\x00\n\x001\x00\t\x002\x00\n\x00"))
	f.Add("x.csv", []byte("POS\u0130TION,ΟΔΟΣ\n1,2\n"))
	f.Add("x.csv", []byte("g,a,b,c,d,e,f,g,h\n1,\"2\",3,,,,,,\n"))
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		var out bytes.Buffer
		res, err := processing.Convert(context.Background(), bytes.NewReader(data), &out, processing.Options{Name: name})
		if err != nil {
			t.Fatalf("Convert error for content (must be a Result): %v", err)
		}
		if res.Converted {
			if !json.Valid(out.Bytes()) {
				t.Fatalf("invalid JSON document")
			}
		} else if res.Reason == "" && (res.Err == nil || res.Err.Error() == "") {
			t.Fatalf("not converted without a reason or an error message")
		}
	})
}
