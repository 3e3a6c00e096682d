// Package gff converts GTF, GFF and GFF3 feature files into UnifiedData
// genomics records, line by line, as the Omicsomics Python
// GenomicsConverter does (spec processing.md §4.3). Attributes are kept as
// the raw ninth column.
package gff

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/pyfmt"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// Headers are the fixed UnifiedData headers of a GTF/GFF document.
var Headers = []string{"SEQNAME", "SOURCE", "FEATURE", "START", "END", "SCORE", "STRAND", "FRAME", "ATTRIBUTES"}

// Converter converts GTF/GFF/GFF3. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Genomics, "gtf", Converter{})
	processing.Register(processing.Genomics, "gff", Converter{})
	processing.Register(processing.Genomics, "gff3", Converter{})
}

// Convert implements processing.Converter.
func (c Converter) Convert(ctx context.Context, in processing.Input, out processing.RecordWriter) (processing.Summary, error) {
	lr := textio.NewLineReaderContext(ctx, in.R, textio.LineOptions{MaxLineBytes: c.MaxLineBytes})
	n := 0
	var fields []string
	vals := make([]processing.Field, len(Headers))
	for i, h := range Headers {
		vals[i].Key = h
	}
	rec := processing.Record{Values: vals}
	for lr.Next() {
		b := lr.Line()
		if len(b) > 0 && b[0] == '#' {
			continue
		}
		fields = splitTabs(stripLine(b), fields[:0])
		if len(fields) < 9 {
			continue
		}
		line := lr.LineNumber()
		start, err := parseInt(line, "START", fields[3])
		if err != nil {
			return processing.Summary{}, err
		}
		end, err := parseInt(line, "END", fields[4])
		if err != nil {
			return processing.Summary{}, err
		}
		var score any
		if fields[5] != "." {
			s, ok := pyfmt.ParseFloat(fields[5])
			if !ok {
				return processing.Summary{}, &processing.ParseError{Line: line, Field: "SCORE",
					Msg: fmt.Sprintf("SCORE %s is not a number or '.'", quote(fields[5])), Err: pyfmt.ErrSyntax}
			}
			score = s
		}
		// Python: f"feature_{idx}" with idx the 0-based physical line.
		rec.ID = "feature_" + strconv.Itoa(line-1)
		vals[0].Value = fields[0]
		vals[1].Value = fields[1]
		vals[2].Value = fields[2]
		vals[3].Value = start
		vals[4].Value = end
		vals[5].Value = score
		vals[6].Value = fields[6]
		vals[7].Value = fields[7]
		vals[8].Value = fields[8]
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
		CustomFields: []processing.Field{},
		Statistics: []processing.Field{
			{Key: "total_features", Value: int64(n)},
			{Key: "file_size_bytes", Value: in.Size},
		},
		Records: n,
	}, nil
}

// parseInt is Python int(): an int64, or a processing.BigInt when the
// value is outside int64 (Python integers are unbounded).
func parseInt(line int, field, text string) (any, error) {
	v, err := pyfmt.ParseIntErr(text)
	if err == nil {
		return v, nil
	}
	if errors.Is(err, pyfmt.ErrRange) {
		if big, ok := pyfmt.ParseBigInt(text); ok {
			return processing.BigInt(big), nil
		}
	}
	return nil, &processing.ParseError{Line: line, Field: field,
		Msg: fmt.Sprintf("%s %s is not an integer", field, quote(text)), Err: err}
}

// quote renders a field for an error message, shortened if very long.
func quote(s string) string {
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return "'" + s + "'"
}

// stripLine converts a line to a string with Python str.strip() applied,
// with a fast path for lines that start and end with visible ASCII.
func stripLine(b []byte) string {
	if len(b) > 0 && isPlain(b[0]) && isPlain(b[len(b)-1]) {
		return string(b)
	}
	return pyfmt.Strip(string(b))
}

func isPlain(c byte) bool { return c > ' ' && c < 0x7f }

// splitTabs splits s on every TAB like Python str.split("\t"), appending to
// dst.
func splitTabs(s string, dst []string) []string {
	for {
		i := strings.IndexByte(s, '\t')
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
}
