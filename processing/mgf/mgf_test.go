package mgf

import (
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mgf")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "proteomics", Format: "mgf"})
	}
	convtest.Golden(t, Converter{}, cases)
}

func FuzzMGF(f *testing.F) { convtest.Fuzz(f, Converter{}, "testdata/*.mgf") }

func TestRobustness(t *testing.T) {
	convtest.Robustness(t, Converter{}, []byte("BEGIN IONS\nTITLE=x\n1 2\nEND IONS\n"))
}

func genMGF(r *rand.Rand) []byte {
	return convtest.RandomLines(r, 14, func(r *rand.Rand) string {
		return convtest.Pick(r, []string{"BEGIN IONS", "END IONS", " BEGIN IONS ", "begin ions", "TITLE=s1", "title=x=y", "TITLE=",
			"PEPMASS=500.2 100", "CHARGE=2+", "RTINSECONDS=12", "SCANS=3", "Tİtle=turkish", "\u212aey=kelvin",
			"100.5 200", "1 2", "", " ", "#comment", "#a=b", "=x", "\x1f", "é"})
	})
}

func TestDifferential(t *testing.T) {
	convtest.Differential(t, Converter{}, "proteomics", "mgf", ".mgf", 400, genMGF, nil)
}
