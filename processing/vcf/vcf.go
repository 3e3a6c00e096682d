// Package vcf converts VCF (Variant Call Format) text into UnifiedData
// genomics records, line by line, the way the Omicsomics Python
// GenomicsConverter does (spec processing.md §4.1).
//
// Input.R must already be decompressed (the engine detects gzip by its
// magic bytes, whatever the file is called).
package vcf

import (
	"bytes"
	"context"
	"strings"

	"github.com/omicsomics/omics-worker/processing/internal/linefields"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// Headers are the fixed UnifiedData headers of a VCF document.
var Headers = []string{"CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", "SAMPLE"}

// Converter converts VCF. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Genomics, "vcf", Converter{})
	// Python's GenomicsConverter accepts the format string "vcf.gz" too.
	processing.Register(processing.Genomics, "vcf.gz", Converter{})
}

var (
	prefixMeta       = []byte("##")
	prefixFileformat = []byte("##fileformat=")
	prefixHeader     = []byte("#CHROM")
)

// Convert implements processing.Converter.
func (c Converter) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	var version any // nil until a ##fileformat= line is seen
	n := 0
	var fields []string
	rec := linefields.NewRecord(Headers)
	vals := rec.Values
	var chrom, filter, format boxCache
	for lr.Next() {
		b := lr.Line()
		if bytes.HasPrefix(b, prefixMeta) {
			if bytes.HasPrefix(b, prefixFileformat) {
				// Python: line.strip().split("=")[1]
				s := pyfmt.Strip(string(b))
				rest := s[strings.IndexByte(s, '=')+1:]
				if j := strings.IndexByte(rest, '='); j >= 0 {
					rest = rest[:j]
				}
				version = rest
			}
			continue
		}
		if bytes.HasPrefix(b, prefixHeader) {
			continue
		}
		fields = linefields.SplitTabs(linefields.StripLine(b), fields[:0])
		if len(fields) < 8 {
			continue
		}
		line := lr.LineNumber()
		pos, err := linefields.ParseInt(line, "POS", fields[1])
		if err != nil {
			return processing.Summary{}, err
		}
		qual, err := linefields.ParseOptFloat(line, "QUAL", fields[5])
		if err != nil {
			return processing.Summary{}, err
		}
		rec.ID = fields[0] + ":" + fields[1] + ":" + fields[3] + ":" + fields[4]
		// Boxing a string into an interface allocates; columns that repeat
		// (chromosome, filter, format) or are single bases reuse a boxed
		// value (12 -> 8 allocations per record).
		vals[0].Value = chrom.box(fields[0])
		vals[1].Value = pos
		if fields[2] == "." {
			vals[2].Value = nil
		} else {
			vals[2].Value = fields[2]
		}
		vals[3].Value = boxAllele(fields[3])
		vals[4].Value = boxAllele(fields[4])
		vals[5].Value = qual
		vals[6].Value = filter.box(fields[6])
		vals[7].Value = fields[7]
		if len(fields) > 8 {
			vals[8].Value = format.box(fields[8])
		} else {
			vals[8].Value = nil
		}
		vals[9].Value = optField(fields, 9)
		if n == 0 {
			// The head is final here unless a ##fileformat= line follows
			// a record (then a streamed conversion ends with
			// processing.ErrHeadChanged and the caller converts again
			// without streaming).
			if hw, ok := out.(processing.HeadWriter); ok {
				if err := hw.WriteHead(Headers, customFields(version)); err != nil {
					return processing.Summary{}, err
				}
			}
		}
		if err := out.WriteRecord(&rec); err != nil {
			return processing.Summary{}, err
		}
		n++
	}
	if err := lr.Err(); err != nil {
		return processing.Summary{}, err
	}
	return processing.Summary{
		Headers:      Headers,
		CustomFields: customFields(version),
		Statistics: []processing.Field{
			{Key: "total_variants", Value: int64(n)},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}

func customFields(version any) []processing.Field {
	return []processing.Field{{Key: "vcf_version", Value: version}}
}

// boxCache remembers the last boxed string of a column.
type boxCache struct {
	s string
	v any
}

func (c *boxCache) box(s string) any {
	if c.v == nil || c.s != s {
		c.s, c.v = s, s
	}
	return c.v
}

// oneChar holds every printable ASCII character boxed as a string.
var oneChar [128]any

func init() {
	for c := 0x20; c < 0x7f; c++ {
		oneChar[c] = string(rune(c))
	}
}

// boxAllele boxes s, without allocating for a single-base allele.
func boxAllele(s string) any {
	if len(s) == 1 && s[0] < 0x7f && s[0] >= 0x20 {
		return oneChar[s[0]]
	}
	return s
}

func optField(fields []string, i int) any {
	if len(fields) > i {
		return fields[i]
	}
	return nil
}
