// Package gen writes deterministic synthetic omics files of a requested
// size for benchmarks (go test -bench) and for `make bench-convert`, which
// runs the Go and the Python converters on the same files. The content is
// pseudo-random but realistic in shape; the same seed gives the same bytes.
package gen

import (
	"bufio"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"strconv"
)

// countWriter counts bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

const bases = "ACGT"

// VCF writes a VCF 4.2 file of at least size bytes (one sample column,
// FORMAT GT:DP) and returns the number of variant lines.
func VCF(w io.Writer, size int64, seed uint64) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	rng := rand.New(rand.NewPCG(seed, 1))
	bw.WriteString("##fileformat=VCFv4.2\n##source=omics-worker-gen\n##contig=<ID=chr1>\n" +
		"##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n" +
		"##INFO=<ID=AF,Number=A,Type=Float,Description=\"Allele frequency\">\n" +
		"##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n" +
		"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tSAMPLE1\n")
	var n int64
	pos := 10000
	buf := make([]byte, 0, 256)
	for cw.n+int64(bw.Buffered()) < size {
		pos += 1 + rng.IntN(300)
		ri := rng.IntN(4)
		ref, alt := bases[ri], bases[(ri+1+rng.IntN(3))%4]
		buf = buf[:0]
		buf = append(buf, "chr"...)
		buf = strconv.AppendInt(buf, 1+n%22, 10)
		buf = append(buf, '\t')
		buf = strconv.AppendInt(buf, int64(pos), 10)
		buf = append(buf, "\trs"...)
		buf = strconv.AppendInt(buf, 1000000+n, 10)
		buf = append(buf, '\t', ref, '\t', alt, '\t')
		if rng.IntN(20) == 0 {
			buf = append(buf, '.')
		} else {
			buf = strconv.AppendFloat(buf, float64(rng.IntN(10000))/10, 'f', -1, 64)
		}
		if rng.IntN(10) == 0 {
			buf = append(buf, "\tLowQual\tDP="...)
		} else {
			buf = append(buf, "\tPASS\tDP="...)
		}
		buf = strconv.AppendInt(buf, int64(5+rng.IntN(200)), 10)
		buf = append(buf, ";AF="...)
		buf = strconv.AppendFloat(buf, float64(rng.IntN(1000))/1000, 'f', -1, 64)
		buf = append(buf, "\tGT:DP\t"...)
		buf = append(buf, "0/1"...)
		if rng.IntN(3) == 0 {
			buf[len(buf)-3] = '1'
		}
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(5+rng.IntN(200)), 10)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Flush()
}

// FASTQ writes Illumina-style FASTQ reads of readLen bases until at least
// size uncompressed bytes were produced and returns the number of reads.
func FASTQ(w io.Writer, size int64, readLen int, seed uint64) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<16)
	rng := rand.New(rand.NewPCG(seed, 2))
	var n int64
	buf := make([]byte, 0, 2*readLen+128)
	for cw.n+int64(bw.Buffered()) < size {
		buf = buf[:0]
		buf = append(buf, "@SIM:1:FCX:1:"...)
		buf = strconv.AppendInt(buf, 1101+n%20, 10)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(rng.IntN(30000)), 10)
		buf = append(buf, ':')
		buf = strconv.AppendInt(buf, int64(rng.IntN(30000)), 10)
		buf = append(buf, " 1:N:0:ATCACG\n"...)
		for i := 0; i < readLen; i++ {
			if rng.IntN(500) == 0 {
				buf = append(buf, 'N')
			} else {
				buf = append(buf, bases[rng.IntN(4)])
			}
		}
		buf = append(buf, "\n+\n"...)
		for i := 0; i < readLen; i++ {
			buf = append(buf, byte('!'+2+rng.IntN(39)))
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return n, err
		}
		n++
	}
	return n, bw.Flush()
}

// FASTQGzip is FASTQ compressed with gzip (default level); size is the
// uncompressed size.
func FASTQGzip(w io.Writer, size int64, readLen int, seed uint64) (int64, error) {
	zw := gzip.NewWriter(w)
	n, err := FASTQ(zw, size, readLen, seed)
	if err != nil {
		return n, err
	}
	return n, zw.Close()
}
