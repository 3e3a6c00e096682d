// Package linefields holds the small text helpers shared by the
// tab-separated genomics converters (VCF, BED, GTF/GFF): Python str.strip()
// of a line, str.split("\t"), Python int() with unbounded integers, and
// field quoting for error messages.
package linefields

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/processing"
)

// ParseInt is Python int(): an int64, or a processing.BigInt when the
// value is outside int64 (Python integers are unbounded). The error is a
// *processing.ParseError naming the line and field.
func ParseInt(line int, field, text string) (any, error) {
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
		Msg: fmt.Sprintf("%s %s is not an integer", field, Quote(text)), Err: err}
}

// Quote renders a field for an error message, shortened if very long.
func Quote(s string) string {
	if len(s) > 40 {
		cut := 40
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return "'" + s + "'"
}

// StripLine converts a line to a string with Python str.strip() applied,
// with a fast path for lines that start and end with visible ASCII.
func StripLine(b []byte) string {
	if len(b) > 0 && isPlain(b[0]) && isPlain(b[len(b)-1]) {
		return string(b)
	}
	return pyfmt.Strip(string(b))
}

func isPlain(c byte) bool { return c > ' ' && c < 0x7f }

// SplitTabs splits s on every TAB like Python str.split("\t"), appending to
// dst.
func SplitTabs(s string, dst []string) []string {
	for {
		i := strings.IndexByte(s, '\t')
		if i < 0 {
			return append(dst, s)
		}
		dst = append(dst, s[:i])
		s = s[i+1:]
	}
}

// ParseOptFloat is the column rule shared by VCF QUAL and BED/GFF SCORE:
// "." is null, anything else must be Python float() (nan/inf are kept and
// written as null by the JSON writer).
func ParseOptFloat(line int, field, text string) (any, error) {
	if text == "." {
		return nil, nil
	}
	f, ok := pyfmt.ParseFloat(text)
	if !ok {
		return nil, &processing.ParseError{Line: line, Field: field,
			Msg: fmt.Sprintf("%s %s is not a number or '.'", field, Quote(text)), Err: pyfmt.ErrSyntax}
	}
	return f, nil
}

// NewRecord returns a record whose values carry the header keys in order;
// converters fill Values[i].Value and reuse it for every line.
func NewRecord(headers []string) processing.Record {
	vals := make([]processing.Field, len(headers))
	for i, h := range headers {
		vals[i].Key = h
	}
	return processing.Record{Values: vals}
}
