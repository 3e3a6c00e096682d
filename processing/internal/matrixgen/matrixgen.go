// Package matrixgen writes deterministic synthetic expression matrices
// (CSV or TSV, gene_id + sample columns) of a requested size for
// benchmarks. VCF and FASTQ generators live in processing/internal/gen.
//
//	go run ./processing/internal/matrixgen/genmatrix -delim , -size 100M -o /tmp/m.csv
package matrixgen

import (
	"bufio"
	"io"
	"math/rand/v2"
	"strconv"
)

// Matrix writes a header "gene_id,sample_1..sample_N" and rows until at
// least size bytes were written; even columns hold integers, odd columns
// decimals. It returns the number of bytes written.
func Matrix(w io.Writer, delim byte, samples int, size int64, seed uint64) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var n int64
	b := []byte("gene_id")
	for s := 1; s <= samples; s++ {
		b = append(b, delim)
		b = append(b, "sample_"...)
		b = strconv.AppendInt(b, int64(s), 10)
	}
	b = append(b, '\n')
	for g := 0; ; g++ {
		m, err := bw.Write(b)
		n += int64(m)
		if err != nil {
			return n, err
		}
		if n >= size {
			break
		}
		b = append(b[:0], "ENSG"...)
		b = strconv.AppendInt(b, 10000000000+int64(g), 10)
		for s := 0; s < samples; s++ {
			b = append(b, delim)
			if s%2 == 0 {
				b = strconv.AppendInt(b, int64(rng.IntN(100000)), 10)
			} else {
				b = strconv.AppendFloat(b, float64(rng.IntN(1000000))/1000, 'f', -1, 64)
			}
		}
		b = append(b, '\n')
	}
	return n, bw.Flush()
}
