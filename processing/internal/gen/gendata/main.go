// Command gendata writes a synthetic benchmark file.
//
//	go run ./processing/internal/gen/gendata -format vcf -size 100M -o /tmp/bench.vcf
//	go run ./processing/internal/gen/gendata -format fastq.gz -size 100M -o /tmp/bench.fastq.gz
//
// -size is the uncompressed size (suffixes K, M, G are powers of 1024).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/processing/internal/gen"
)

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

func main() {
	format := flag.String("format", "vcf", "vcf, fastq or fastq.gz")
	sizeFlag := flag.String("size", "100M", "uncompressed size")
	out := flag.String("o", "", "output file (default stdout)")
	seed := flag.Uint64("seed", 1, "random seed")
	readLen := flag.Int("read-length", 150, "FASTQ read length")
	flag.Parse()
	size, err := parseSize(*sizeFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata: bad -size:", err)
		os.Exit(2)
	}
	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "gendata:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = f
	}
	var n int64
	switch *format {
	case "vcf":
		n, err = gen.VCF(w, size, *seed)
	case "fastq":
		n, err = gen.FASTQ(w, size, *readLen, *seed)
	case "fastq.gz":
		n, err = gen.FASTQGzip(w, size, *readLen, *seed)
	default:
		err = fmt.Errorf("unknown -format %q", *format)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendata:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "gendata: %d records\n", n)
}
