package vcf

import (
	"path/filepath"
	"testing"
)

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.vcf")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, omics: "genomics", format: "vcf"})
	}
	if len(cases) == 0 {
		t.Fatal("no inputs")
	}
	runGolden(t, Converter{}, cases)
}
