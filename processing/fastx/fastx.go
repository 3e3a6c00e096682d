// Package fastx converts FASTA and FASTQ sequence files into UnifiedData
// genomics records: one record per sequence or read with its length, GC
// fraction and (FASTQ) mean Phred quality, never the sequence itself.
// The Python converters do not handle these formats (they fall back to a
// "raw" document); the record shapes are ours and documented in
// docs/formats.md.
//
// Input.R must already be decompressed (the engine detects gzip by its magic
// bytes).
package fastx

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/processing"
)

// FASTAHeaders and FASTQHeaders are the fixed UnifiedData headers.
var (
	FASTAHeaders = []string{"id", "description", "length", "gc_fraction"}
	FASTQHeaders = []string{"id", "description", "length", "mean_quality", "gc_fraction"}
)

func init() {
	processing.Register(processing.Genomics, "fasta", FASTA{})
	processing.Register(processing.Genomics, "fastq", FASTQ{})
	// SUPPORTED_FORMATS lists "fastq.gz" (the engine decompresses by magic).
	processing.Register(processing.Genomics, "fastq.gz", FASTQ{})
}

// residue classes for the sequence byte table.
const (
	resInvalid = iota
	resSpace   // ignored inside a sequence line
	resGC      // G, C, S (strong)
	resAT      // A, T, U, W (weak)
	resOther   // other IUPAC letters, '*', '-', '.'
)

var residue [256]uint8

func init() {
	for c := 'A'; c <= 'Z'; c++ {
		residue[c] = resOther
		residue[c+'a'-'A'] = resOther
	}
	for _, c := range "GCSgcs" {
		residue[c] = resGC
	}
	for _, c := range "ATUWatuw" {
		residue[c] = resAT
	}
	for _, c := range "*-." {
		residue[c] = resOther
	}
	for _, c := range " \t\v\f" {
		residue[c] = resSpace
	}
}

// seqCounts accumulates one sequence.
type seqCounts struct {
	length int64
	gc, at int64
}

// Per-byte lookup tables, so that the hot loop has no branches.
var (
	isGC, isAT, isRes, isBad [256]uint8
)

func init() {
	for c := 0; c < 256; c++ {
		switch residue[c] {
		case resGC:
			isGC[c], isRes[c] = 1, 1
		case resAT:
			isAT[c], isRes[c] = 1, 1
		case resOther:
			isRes[c] = 1
		case resInvalid:
			isBad[c] = 1
		}
	}
}

// add counts the residues of one sequence line. It returns the index of
// the first invalid byte, or -1.
func (s *seqCounts) add(b []byte) int {
	var gc, at, n int64
	var bad uint8
	for _, c := range b {
		gc += int64(isGC[c])
		at += int64(isAT[c])
		n += int64(isRes[c])
		bad |= isBad[c]
	}
	if bad != 0 {
		for i, c := range b {
			if isBad[c] != 0 {
				return i
			}
		}
	}
	s.gc += gc
	s.at += at
	s.length += n
	return -1
}

// gcFraction is (G+C+S)/(G+C+S+A+T+U+W), or nil when no such base exists.
func (s *seqCounts) gcFraction() any {
	if s.gc+s.at == 0 {
		return nil
	}
	return float64(s.gc) / float64(s.gc+s.at)
}

// splitHeader splits a '>'/'@' header (without the marker) into the id (up
// to the first whitespace) and the description (the rest, trimmed).
func splitHeader(h string) (id, desc string) {
	h = strings.TrimLeft(h, " \t")
	if i := strings.IndexAny(h, " \t"); i >= 0 {
		return h[:i], strings.TrimSpace(h[i+1:])
	}
	return strings.TrimRight(h, " \t\v\f"), ""
}

func badChar(line, col int, c byte, what string) error {
	var cause error
	if c < 0x20 || c == 0x7f {
		cause = processing.ErrBinary
	}
	return &processing.ParseError{Line: line, Column: col, Field: what,
		Msg: fmt.Sprintf("unexpected character %s in %s", shownByte(c), what), Err: cause}
}

// lengthHist records sequence lengths for N50 with memory bounded
// independently of the number of sequences: exact counts for lengths below
// smallLimit in a fixed array, and a map for longer ones (there can be at
// most totalBases/smallLimit of those).
type lengthHist struct {
	small []int64
	large map[int64]int64
	total int64
}

const smallLimit = 1 << 16

func (h *lengthHist) add(n int64) {
	h.total += n
	if n < smallLimit {
		if h.small == nil {
			h.small = make([]int64, smallLimit)
		}
		h.small[n]++
		return
	}
	if h.large == nil {
		h.large = make(map[int64]int64)
	}
	h.large[n]++
}

// n50 is the largest length L such that sequences of length >= L hold at
// least half of all bases (0 when there are no bases).
func (h *lengthHist) n50() int64 {
	if h.total == 0 {
		return 0
	}
	var acc int64
	keys := make([]int64, 0, len(h.large))
	for k := range h.large {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] > keys[j] })
	for _, k := range keys {
		acc += k * h.large[k]
		if 2*acc >= h.total {
			return k
		}
	}
	for k := int64(len(h.small)) - 1; k > 0; k-- {
		acc += k * h.small[k]
		if 2*acc >= h.total {
			return k
		}
	}
	return 0
}

func itoa(n int) string { return strconv.Itoa(n) }

// isBlank reports whether b holds only spaces and tabs.
func isBlank(b []byte) bool {
	for _, c := range b {
		if residue[c] != resSpace {
			return false
		}
	}
	return true
}
