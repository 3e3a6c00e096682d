package bed

import (
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bed")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "genomics", format: "bed"})
	}
	runGolden(t, Converter{}, cases)
}

func FuzzBED(f *testing.F) { fuzzConverter(f, Converter{}, "testdata/*.bed") }

func TestRobustness(t *testing.T) { robustness(t, Converter{}, []byte("chr1\t1\t2\n")) }
