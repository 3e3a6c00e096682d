package bed

import (
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bed")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Omics: "genomics", Format: "bed"})
	}
	convtest.Golden(t, Converter{}, cases)
}

func FuzzBED(f *testing.F) { convtest.Fuzz(f, Converter{}, "testdata/*.bed") }

func TestRobustness(t *testing.T) { convtest.Robustness(t, Converter{}, []byte("chr1\t1\t2\n")) }

var bedTokens = []string{"chr1", "1", "0012", " 7 ", "1_000", "-5", "abc", ".", "", "nan", "-inf", "1e5", "1.5", "é",
	"\u00a0", "\x1f", "\u0663", "\x0b", "\x0c", "\x1c", "\u0085", "\u2028", "\u3000", "+", "-", "name", "track", "#x"}

func genBED(r *rand.Rand) []byte {
	return convtest.RandomLines(r, 8, func(r *rand.Rand) string {
		switch r.IntN(10) {
		case 0:
			return convtest.Pick(r, []string{"track name=x", "browser position", "#comment", "", " ", "\t", "trackless\t1\t2"})
		}
		fields := make([]string, 2+r.IntN(6))
		for i := range fields {
			fields[i] = convtest.Pick(r, bedTokens)
			if (i == 1 || i == 2) && r.IntN(3) > 0 {
				fields[i] = strconv.Itoa(r.IntN(1000))
			}
			if i == 4 && r.IntN(2) == 0 {
				fields[i] = convtest.Pick(r, []string{"0", "12.5", "1e3", "."})
			}
		}
		return strings.Join(fields, "\t")
	})
}

func TestDifferential(t *testing.T) {
	convtest.Differential(t, Converter{}, "genomics", "bed", ".bed", 400, genBED, func(pyErr string) bool {
		// Deliberate: a "." score is null here; Python aborts the file.
		return pyErr == "could not convert string to float: '.'"
	})
}
