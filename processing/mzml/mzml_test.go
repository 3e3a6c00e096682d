package mzml

import (
	"path/filepath"
	"testing"
)

func TestGoldenMzML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzML")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "proteomics", format: "mzml"})
	}
	runGolden(t, MzML{}, cases)
}

func TestGoldenMzXML(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.mzXML")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "proteomics", format: "mzxml"})
	}
	runGolden(t, MzXML{}, cases)
}
