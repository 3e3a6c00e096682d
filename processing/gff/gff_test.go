package gff

import (
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestGolden(t *testing.T) {
	var cases []goldenCase
	for _, pat := range []string{"testdata/*.gtf", "testdata/*.gff", "testdata/*.gff3"} {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			format := "gff"
			if strings.HasSuffix(f, ".gtf") {
				format = "gtf"
			}
			cases = append(cases, goldenCase{path: f, omics: "genomics", format: format})
		}
	}
	runGolden(t, Converter{}, cases)
}

func FuzzGFF(f *testing.F) { fuzzConverter(f, Converter{}, "testdata/*.gtf", "testdata/*.gff*") }

func TestRobustness(t *testing.T) {
	robustness(t, Converter{}, []byte("c\ts\tgene\t1\t2\t.\t+\t.\tID=g\n"))
}

var gffTokens = []string{"chr1", "1", "0012", " 7 ", "1_000", "-5", "abc", ".", "", "nan", "-inf", "1e5", "1.5", "é",
	"\u00a0", "\x1f", "\u0663", "+", "-", "gene", "ID=g1;Name=x", "gene_id \"g\";", "#x"}

func genGFF(r *rand.Rand) []byte {
	return randomLines(r, 8, func(r *rand.Rand) string {
		if r.IntN(8) == 0 {
			return pick(r, []string{"##gff-version 3", "#!x", "", " ", "\t", "##FASTA", ">seq", "ACGT"})
		}
		fields := make([]string, 7+r.IntN(4))
		for i := range fields {
			fields[i] = pick(r, gffTokens)
			if (i == 3 || i == 4) && r.IntN(3) > 0 {
				fields[i] = strconv.Itoa(r.IntN(1000))
			}
			if i == 5 && r.IntN(2) == 0 {
				fields[i] = pick(r, []string{".", "0.5", "10"})
			}
		}
		return strings.Join(fields, "\t")
	})
}

func TestDifferential(t *testing.T) {
	differential(t, Converter{}, "genomics", "gtf", ".gtf", 400, genGFF, nil)
}
