package mgf

import (
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mgf")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "proteomics", format: "mgf"})
	}
	runGolden(t, Converter{}, cases)
}

func FuzzMGF(f *testing.F) { fuzzConverter(f, Converter{}, "testdata/*.mgf") }

func TestRobustness(t *testing.T) {
	robustness(t, Converter{}, []byte("BEGIN IONS\nTITLE=x\n1 2\nEND IONS\n"))
}
