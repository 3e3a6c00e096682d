// Package tabular converts delimited text tables (CSV, TSV) into
// UnifiedData records the way the Omicsomics transcriptomics, proteomics
// and metabolomics converters do, reading them with the rules of Python's
// csv module (excel / excel-tab dialect, non-strict).
package tabular

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/processing"
	"github.com/omicsomics/omics-worker/processing/textio"
)

// FieldLimit is Python csv.field_size_limit(): fields longer than this
// many characters are an error.
const FieldLimit = 131072

// MaxColumns is the largest number of fields in one row. Every column costs
// memory for the whole conversion (its name is the key of every value), so
// a row with more fields is refused before they are split. Python's
// DictReader builds a dict of every row and keeps every record, so it
// cannot convert a table this wide with more than a few rows either; such
// a matrix (e.g. a transposed single-cell matrix, cells as columns) must
// be converted with genes or features as columns.
const MaxColumns = 1 << 20

// Reader reads rows with the rules of Python's csv.reader over a file
// opened in text mode (universal newlines): a field starting with '"' is
// quoted until a '"' not followed by another '"' ("" is a literal quote),
// delimiters and line breaks inside quotes are data (line breaks become
// "\n"), characters after the closing quote are appended, a '"' elsewhere
// is ordinary, no whitespace trimming, EOF inside quotes ends the field,
// and an empty line is a row with no fields.
type Reader struct {
	lr    *textio.LineReader
	delim byte
	rec   []byte   // field bytes of the current row
	ends  []int    // end offset in rec of each field
	row   []string // fields of the current row (slices of one string)
	line  int      // physical line where the current row starts
	err   error
}

// NewReader returns a Reader over the lines of lr.
func NewReader(lr *textio.LineReader, delim byte) *Reader {
	return &Reader{lr: lr, delim: delim}
}

// Line is the 1-based physical line on which the last row started.
func (r *Reader) Line() int { return r.line }

// Err returns the error that stopped Read (nil at end of input).
func (r *Reader) Err() error { return r.err }

const (
	startField = iota
	inField
	inQuoted
	quoteInQuoted
)

// Read returns the next row, or ok=false at the end of input or on error
// (see Err). The slice and its strings are valid until the next Read; the
// strings themselves are immutable and may be kept.
func (r *Reader) Read() (row []string, ok bool) {
	if r.err != nil {
		return nil, false
	}
	r.rec = r.rec[:0]
	r.ends = r.ends[:0]
	state := startField
	first := true
	runes := 0 // characters in the current field
	for {
		if !r.lr.Next() {
			if err := r.lr.Err(); err != nil {
				r.err = err
				return nil, false
			}
			if first {
				return nil, false
			}
			// EOF inside a quoted field: the field ends here.
			r.ends = append(r.ends, len(r.rec))
			return r.finish()
		}
		line := r.lr.Line()
		if first {
			r.line = r.lr.LineNumber()
			first = false
			if len(line) == 0 {
				// Empty line: a row without fields.
				return r.finish()
			}
			// Fast path: no quote character at all.
			if bytes.IndexByte(line, '"') < 0 {
				if len(line) >= MaxColumns && bytes.Count(line, []byte{r.delim}) >= MaxColumns {
					r.err = r.columnsError()
					return nil, false
				}
				for {
					i := bytes.IndexByte(line, r.delim)
					if i < 0 {
						break
					}
					r.rec = append(r.rec, line[:i]...)
					r.ends = append(r.ends, len(r.rec))
					line = line[i+1:]
				}
				r.rec = append(r.rec, line...)
				r.ends = append(r.ends, len(r.rec))
				if len(r.rec) > FieldLimit {
					if err := r.checkLimit(); err != nil {
						r.err = err
						return nil, false
					}
				}
				return r.finish()
			}
		}
		for _, c := range line {
			before := len(r.rec)
			switch state {
			case startField:
				switch c {
				case '"':
					state = inQuoted
				case r.delim:
					if !r.endField() {
						return nil, false
					}
					runes = 0
					continue
				default:
					r.rec = append(r.rec, c)
					state = inField
				}
			case inField:
				if c == r.delim {
					if !r.endField() {
						return nil, false
					}
					runes = 0
					state = startField
					continue
				} else {
					r.rec = append(r.rec, c)
				}
			case inQuoted:
				if c == '"' {
					state = quoteInQuoted
				} else {
					r.rec = append(r.rec, c)
				}
			case quoteInQuoted:
				switch c {
				case '"':
					r.rec = append(r.rec, '"')
					state = inQuoted
				case r.delim:
					if !r.endField() {
						return nil, false
					}
					runes = 0
					state = startField
					continue
				default:
					r.rec = append(r.rec, c)
					state = inField
				}
			}
			// One more character in the field if a non-continuation byte
			// was appended.
			if n := len(r.rec); n > before && r.rec[n-1]&0xc0 != 0x80 {
				runes++
				if runes > FieldLimit {
					r.err = r.limitError()
					return nil, false
				}
			}
		}
		if state == inQuoted {
			// The line break is data inside quotes.
			if r.lr.Terminated() {
				r.rec = append(r.rec, '\n')
				if runes++; runes > FieldLimit {
					r.err = r.limitError()
					return nil, false
				}
			}
			continue
		}
		// End of line ends the field and the row.
		r.ends = append(r.ends, len(r.rec))
		return r.finish()
	}
}

// endField ends the field at a delimiter (which starts one more field);
// false, with r.err set, when the row would pass MaxColumns.
func (r *Reader) endField() bool {
	if len(r.ends)+2 > MaxColumns {
		r.err = r.columnsError()
		return false
	}
	r.ends = append(r.ends, len(r.rec))
	return true
}

func (r *Reader) columnsError() error {
	return &processing.ParseError{Line: r.line, Msg: fmt.Sprintf("this row has more than %d fields (the column limit); convert a matrix this wide with its features as rows", MaxColumns), Err: ErrTooManyColumns}
}

// ErrTooManyColumns: a row has more than MaxColumns fields.
var ErrTooManyColumns = errors.New("too many columns")

func (r *Reader) limitError() error {
	return &processing.ParseError{Line: r.line, Msg: fmt.Sprintf("a field is longer than %d characters (the limit of Python's csv module)", FieldLimit)}
}

func (r *Reader) checkLimit() error {
	start := 0
	for _, e := range r.ends {
		if e-start > FieldLimit && utf8.RuneCount(r.rec[start:e]) > FieldLimit {
			return r.limitError()
		}
		start = e
	}
	return nil
}

func (r *Reader) finish() ([]string, bool) {
	s := string(r.rec)
	r.row = r.row[:0]
	start := 0
	for _, e := range r.ends {
		r.row = append(r.row, s[start:e])
		start = e
	}
	return r.row, true
}
