package gff

import (
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestGolden(t *testing.T) {
	var cases []convtest.Case
	for _, pat := range []string{"testdata/*.gtf", "testdata/*.gff", "testdata/*.gff3"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			format := "gff"
			if strings.HasSuffix(f, ".gtf") {
				format = "gtf"
			}
			cases = append(cases, convtest.Case{Path: f, Omics: "genomics", Format: format})
		}
	}
	convtest.Golden(t, Converter{}, cases)
}

func FuzzGFF(f *testing.F) { convtest.Fuzz(f, Converter{}, "testdata/*.gtf", "testdata/*.gff*") }

func TestRobustness(t *testing.T) {
	convtest.Robustness(t, Converter{}, []byte("c\ts\tgene\t1\t2\t.\t+\t.\tID=g\n"))
}

var gffTokens = []string{"chr1", "1", "0012", " 7 ", "1_000", "-5", "abc", ".", "", "nan", "-inf", "1e5", "1.5", "é",
	"\u00a0", "\x1f", "\u0663", "+", "-", "gene", "ID=g1;Name=x", "gene_id \"g\";", "#x"}

func genGFF(r *rand.Rand) []byte {
	return convtest.RandomLines(r, 8, func(r *rand.Rand) string {
		if r.IntN(8) == 0 {
			return convtest.Pick(r, []string{"##gff-version 3", "#!x", "", " ", "\t", "##FASTA", ">seq", "ACGT"})
		}
		fields := make([]string, 7+r.IntN(4))
		for i := range fields {
			fields[i] = convtest.Pick(r, gffTokens)
			if (i == 3 || i == 4) && r.IntN(3) > 0 {
				fields[i] = strconv.Itoa(r.IntN(1000))
			}
			if i == 5 && r.IntN(2) == 0 {
				fields[i] = convtest.Pick(r, []string{".", "0.5", "10"})
			}
		}
		return strings.Join(fields, "\t")
	})
}

func TestDifferential(t *testing.T) {
	convtest.Differential(t, Converter{}, "genomics", "gtf", ".gtf", 400, genGFF, nil)
}
