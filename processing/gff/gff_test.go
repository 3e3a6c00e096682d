package gff

import (
	"path/filepath"
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
