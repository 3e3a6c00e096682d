package mgf

import (
	"math/rand/v2"
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

func genMGF(r *rand.Rand) []byte {
	return randomLines(r, 14, func(r *rand.Rand) string {
		return pick(r, []string{"BEGIN IONS", "END IONS", " BEGIN IONS ", "begin ions", "TITLE=s1", "title=x=y", "TITLE=",
			"PEPMASS=500.2 100", "CHARGE=2+", "RTINSECONDS=12", "SCANS=3", "Tİtle=turkish", "\u212aey=kelvin",
			"100.5 200", "1 2", "", " ", "#comment", "#a=b", "=x", "\x1f", "é"})
	})
}

func TestDifferential(t *testing.T) {
	differential(t, Converter{}, "proteomics", "mgf", ".mgf", 400, genMGF, nil)
}
