package fastx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/omicsomics/omics-worker/processing/internal/gen/convtest"
	"io"
	"os"
	"strings"
	"testing/iotest"

	"github.com/omicsomics/omics-worker/processing"
	"path/filepath"
	"testing"
)

func TestGoldenFASTA(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.fasta")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Format: "fasta"})
	}
	convtest.Golden(t, FASTA{}, cases)
}

func TestGoldenFASTQ(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.fastq")
	var cases []convtest.Case
	for _, f := range files {
		cases = append(cases, convtest.Case{Path: f, Format: "fastq"})
	}
	convtest.Golden(t, FASTQ{}, cases)
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

func FuzzFASTA(f *testing.F) { convtest.Fuzz(f, FASTA{}, "testdata/*.fasta") }

func FuzzFASTQ(f *testing.F) { convtest.Fuzz(f, FASTQ{}, "testdata/*.fastq") }

func TestRobustness(t *testing.T) {
	t.Run("fasta", func(t *testing.T) { convtest.Robustness(t, FASTA{}, []byte(">s d\nACGT\n")) })
	t.Run("fastq", func(t *testing.T) { convtest.Robustness(t, FASTQ{}, []byte("@r\nACGT\n+\nIIII\n")) })
}

// TestFASTAChunkBoundaries: reading one byte at a time (every line split
// across reads, CR LF split) gives the same result as one big read.
func TestFASTAChunkBoundaries(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.fasta")
	files = append(files, "") // plus an inline case with every line ending
	for _, f := range files {
		var data []byte
		if f == "" {
			data = []byte(">a x\r\nAC\rGT\n>b\r\rGG\r\n\r\n;c\r>c y z\nNN")
		} else {
			var err error
			if data, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		var whole, bytewise convtest.Collector
		s1, err1 := FASTA{}.Convert(context.Background(), processing.Input{R: bytes.NewReader(data)}, &whole)
		s2, err2 := FASTA{}.Convert(context.Background(), processing.Input{R: iotest.OneByteReader(bytes.NewReader(data))}, &bytewise)
		if fmt.Sprint(err1) != fmt.Sprint(err2) || fmt.Sprint(s1) != fmt.Sprint(s2) || fmt.Sprint(whole.Recs) != fmt.Sprint(bytewise.Recs) {
			t.Errorf("%s: whole %v %v %v\nbytewise %v %v %v", f, s1, err1, whole.Recs, s2, err2, bytewise.Recs)
		}
		if f == "" && (err1 != nil || len(whole.Recs) != 3 || whole.Recs[1].Values[2].Value != int64(2) || whole.Recs[0].Values[2].Value != int64(4)) {
			t.Errorf("line endings: %v %v", err1, whole.Recs)
		}
	}
}

// TestFASTAUnwrapped: a sequence line much longer than any line limit is
// streamed, not buffered.
func TestFASTAUnwrapped(t *testing.T) {
	const n = 20 << 20
	r := io.MultiReader(strings.NewReader(">chr1 unwrapped\n"), io.LimitReader(repeatReader('G'), n), strings.NewReader("\n>chr2\nAT\n"))
	var c convtest.Collector
	sum, err := FASTA{MaxLineBytes: 1 << 10}.Convert(context.Background(), processing.Input{R: r}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Recs) != 2 || c.Recs[0].Values[2].Value != int64(n) || c.Recs[0].Values[3].Value != 1.0 {
		t.Fatalf("records %v", c.Recs)
	}
	if sum.Statistics[2].Value != int64(n) {
		t.Fatalf("n50 %v", sum.Statistics[2])
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func TestFASTAErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		sentinel error
	}{
		{"long header", ">" + strings.Repeat("h", 2000) + "\nAC\n", "line 1: header line is longer than 1024 bytes", processing.ErrLineTooLong},
		{"utf8 header", ">ok\nAC\n>bad\xff\nAC\n", "line 3: invalid UTF-8 byte 0xff in the header; the file must be UTF-8 text", processing.ErrInvalidUTF8},
		{"binary", ">s\nAC\x00GT\n", "line 2: unexpected character byte 0x00 in sequence", processing.ErrBinary},
		{"blank only", "\n \n", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FASTA{MaxLineBytes: 1024}.Convert(context.Background(), processing.Input{R: strings.NewReader(tc.in)}, &convtest.Collector{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, tc.sentinel) {
				t.Fatalf("got %v, want %q wrapping %v", err, tc.want, tc.sentinel)
			}
		})
	}
}
