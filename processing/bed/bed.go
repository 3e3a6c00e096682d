// Package bed converts BED interval files into UnifiedData genomics
// records, line by line, as the Omicsomics Python GenomicsConverter does
// (spec processing.md §4.2), except that a "." score means "no score"
// (null) instead of aborting the whole file.
package bed

import (
	"bytes"
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

// Headers are the fixed UnifiedData headers of a BED document.
var Headers = []string{"CHROM", "START", "END", "NAME", "SCORE", "STRAND"}

// Converter converts BED. The zero value is ready to use.
type Converter struct {
	// MaxLineBytes bounds the length of one line; 0 means the textio default.
	MaxLineBytes int
}

func init() {
	processing.Register(processing.Genomics, "bed", Converter{})
}

var (
	prefixComment = []byte("#")
	prefixTrack   = []byte("track")
	prefixBrowser = []byte("browser")
)

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
		if bytes.HasPrefix(b, prefixComment) || bytes.HasPrefix(b, prefixTrack) || bytes.HasPrefix(b, prefixBrowser) {
			continue
		}
		fields = splitTabs(stripLine(b), fields[:0])
		if len(fields) < 3 {
			continue
		}
		line := lr.LineNumber()
		start, err := parseInt(line, "START", fields[1])
		if err != nil {
			return processing.Summary{}, err
		}
		end, err := parseInt(line, "END", fields[2])
		if err != nil {
			return processing.Summary{}, err
		}
		rec.ID = fields[0] + ":" + fields[1] + "-" + fields[2]
		vals[0].Value = fields[0]
		vals[1].Value = start
		vals[2].Value = end
		if len(fields) > 3 {
			vals[3].Value = fields[3]
		} else {
			// Python: f"region_{idx}" with idx the 0-based physical line.
			vals[3].Value = "region_" + strconv.Itoa(line-1)
		}
		vals[4].Value = nil
		if len(fields) > 4 && fields[4] != "." {
			score, ok := pyfmt.ParseFloat(fields[4])
			if !ok {
				return processing.Summary{}, &processing.ParseError{Line: line, Field: "SCORE",
					Msg: fmt.Sprintf("SCORE %s is not a number or '.'", quote(fields[4])), Err: pyfmt.ErrSyntax}
			}
			vals[4].Value = score
		}
		vals[5].Value = nil
		if len(fields) > 5 {
			vals[5].Value = fields[5]
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
		CustomFields: []processing.Field{},
		Statistics: []processing.Field{
			{Key: "total_regions", Value: int64(n)},
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
