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
