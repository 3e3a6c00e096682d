package fastx

import (
	"path/filepath"
	"testing"
)

func TestGoldenFASTA(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.fasta")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, format: "fasta"})
	}
	runGolden(t, FASTA{}, cases)
}

func TestGoldenFASTQ(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.fastq")
	var cases []goldenCase
	for _, f := range files {
		cases = append(cases, goldenCase{path: f, format: "fastq"})
	}
	runGolden(t, FASTQ{}, cases)
}

func TestN50(t *testing.T) {
	tests := []struct {
		lens []int64
		want int64
	}{
		{nil, 0},
		{[]int64{0}, 0},
		{[]int64{5}, 5},
		{[]int64{2, 3, 4, 5, 6, 7, 8, 9, 10}, 8}, // total 54: 10+9+8=27 >= 27
		{[]int64{100000, 1, 1, 1}, 100000},
		{[]int64{70000, 70000, 100, 65535, 65536}, 70000},
		{[]int64{65536, 65535, 65535, 65535}, 65535},
	}
	for _, tc := range tests {
		var h lengthHist
		for _, l := range tc.lens {
			h.add(l)
		}
		if got := h.n50(); got != tc.want {
			t.Errorf("n50(%v) = %d, want %d", tc.lens, got, tc.want)
		}
	}
}

func FuzzFASTA(f *testing.F) { fuzzConverter(f, FASTA{}, "testdata/*.fasta") }

func FuzzFASTQ(f *testing.F) { fuzzConverter(f, FASTQ{}, "testdata/*.fastq") }

func TestRobustness(t *testing.T) {
	t.Run("fasta", func(t *testing.T) { robustness(t, FASTA{}, []byte(">s d\nACGT\n")) })
	t.Run("fastq", func(t *testing.T) { robustness(t, FASTQ{}, []byte("@r\nACGT\n+\nIIII\n")) })
}
