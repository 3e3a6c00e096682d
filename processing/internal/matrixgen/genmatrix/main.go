// Command genmatrix writes a synthetic expression matrix for benchmarks:
//
//	go run ./processing/internal/matrixgen/genmatrix -delim , -size 100M -o /tmp/m.csv
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/processing/internal/matrixgen"
)

func main() {
	delim := flag.String("delim", ",", `delimiter: "," (CSV) or "tab" (TSV)`)
	size := flag.String("size", "100M", "size (suffix K, M, G = powers of 1024)")
	samples := flag.Int("samples", 12, "number of sample columns")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("o", "", "output file (default stdout)")
	flag.Parse()
	n, err := parseSize(*size)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmatrix: bad -size:", err)
		os.Exit(2)
	}
	d := byte(',')
	if *delim == "tab" || *delim == `\t` || *delim == "\t" {
		d = '\t'
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "genmatrix:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	if _, err := matrixgen.Matrix(w, d, *samples, n, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "genmatrix:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}
