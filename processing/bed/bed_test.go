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
