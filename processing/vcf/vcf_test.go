package vcf

import (
	"context"
	"errors"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/processing"
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.vcf")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "genomics", Format: "vcf"})
	}
	if len(cases) == 0 {
		t.Fatal("no inputs")
	}
	convtest.Golden(t, Converter{}, cases)
}

func FuzzVCF(f *testing.F) { convtest.Fuzz(f, Converter{}, "testdata/*.vcf") }

func TestRobustness(t *testing.T) {
	convtest.Robustness(t, Converter{}, []byte("chr1\t100\t.\tA\tG\t30\tPASS\t.\n"))
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name, in string
		conv     Converter
		want     string
		sentinel error
	}{
		{"pos", "chr1\tabc\t.\tA\tG\t30\tPASS\t.\n", Converter{}, "line 1: POS 'abc' is not an integer", nil},
		{"pos float", "\n\nchr1\t1.0\t.\tA\tG\t30\tPASS\t.\n", Converter{}, "line 3: POS '1.0' is not an integer", nil},
		{"qual", "chr1\t1\t.\tA\tG\tq\tPASS\t.\n", Converter{}, "line 1: QUAL 'q' is not a number or '.'", nil},
		{"long value cut", "chr1\t" + strings.Repeat("é", 30) + "\t.\tA\tG\t1\tPASS\t.\n", Converter{}, "line 1: POS '" + strings.Repeat("é", 20) + "…' is not an integer", nil},
		{"line too long", "chr1\t1\t.\tA\tG\t1\tPASS\t" + strings.Repeat("x", 2000) + "\n", Converter{MaxLineBytes: 1000}, "line 1: line is longer than 1000 bytes (is this a text file?)", processing.ErrLineTooLong},
		{"utf8", "chr1\t1\t.\tA\tG\t1\tPASS\t\xc3\n", Converter{}, "line 1: invalid UTF-8 byte 0xc3 at column 21 (byte offset 20); the file must be UTF-8 text", processing.ErrInvalidUTF8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.conv.Convert(context.Background(), processing.Input{R: strings.NewReader(tc.in)}, &convtest.Counter{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			var pe *processing.ParseError
			if tc.sentinel == nil && !errors.As(err, &pe) {
				t.Fatalf("%T is not a ParseError", err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("%v does not wrap %v", err, tc.sentinel)
			}
			if pe != nil && pe.Field == "" {
				t.Fatalf("no field in %#v", pe)
			}
		})
	}
}

var vcfTokens = []string{"chr1", "1", "0012", " 7 ", "1_000", "1__0", "-5", "+3", "abc", ".", "", "nan", "-inf", "Infinity",
	"1e5", "1.5", "1_0.5", "1E-7", "é", "\u00a0", "\x1f", "\u0663", "\x0b", "\x0c", "\x1c", "\u0085", "\u2028", "\u3000", "1\u2028", "\ufeff", "A", "G", "PASS", "DP=1", "GT", "0/1", "#x", "##"}

func genVCF(r *rand.Rand) []byte {
	return convtest.RandomLines(r, 8, func(r *rand.Rand) string {
		switch r.IntN(8) {
		case 0:
			return "##fileformat=" + convtest.Pick(r, vcfTokens) + convtest.Pick(r, []string{"", "=x", " "})
		case 1:
			return convtest.Pick(r, []string{"#CHROM\tPOS", "##INFO=<ID=DP>", "", " ", "\t"})
		}
		fields := make([]string, 6+r.IntN(6))
		for i := range fields {
			fields[i] = convtest.Pick(r, vcfTokens)
			if i == 1 && r.IntN(2) == 0 {
				fields[i] = strconv.Itoa(r.IntN(1000))
			}
			if i == 5 && r.IntN(2) == 0 {
				fields[i] = convtest.Pick(r, []string{".", "30", "1.5", "nan"})
			}
		}
		return strings.Join(fields, "\t")
	})
}

func TestDifferential(t *testing.T) {
	convtest.Differential(t, Converter{}, "genomics", "vcf", ".vcf", 400, genVCF, nil)
}
