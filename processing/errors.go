package processing

import (
	"errors"
	"fmt"

	"github.com/omicsomics/omics-worker/processing/textio"
)

// Sentinel errors. Converters wrap them (with %w or inside a ParseError)
// so callers can test conditions with errors.Is.
var (
	// ErrEmptyFile: the input has no bytes at all.
	ErrEmptyFile = errors.New("the file is empty")
	// ErrBinary: the input looks like binary data, not text.
	ErrBinary = errors.New("the file is binary, not text")
	// ErrTruncated: the input ends in the middle of a structure (e.g. a
	// truncated gzip stream or an unterminated record).
	ErrTruncated = errors.New("the file is truncated")
	// ErrUnsupportedFormat: no converter handles this omics type/format.
	ErrUnsupportedFormat = errors.New("unsupported format for conversion")
	// ErrLineTooLong: a line is longer than the line limit.
	ErrLineTooLong = textio.ErrLineTooLong
	// ErrInvalidUTF8: the text is not valid UTF-8.
	ErrInvalidUTF8 = textio.ErrInvalidUTF8
	// ErrUTF16: the text is UTF-16 (or UTF-32), not UTF-8. It is also
	// ErrInvalidUTF8, the condition under which Python refuses the file.
	ErrUTF16 = fmt.Errorf("the file is UTF-16 text, not UTF-8: %w", ErrInvalidUTF8)
)

// ParseError is a malformed-input error with its position. Its message is
// meant for a biologist: "line 17: POS 'abc' is not an integer".
type ParseError struct {
	// Line is the 1-based physical line number (0 if unknown).
	Line int
	// Field is the column/field name concerned ("POS"), if any.
	Field string
	// Column is the 1-based column (field index) concerned, if known.
	Column int
	// Msg is the human message without the "line N: " prefix.
	Msg string
	// Err is the underlying cause or a sentinel, if any.
	Err error
}

func (e *ParseError) Error() string {
	msg := e.Msg
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, msg)
	}
	return msg
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Errorf returns a ParseError for line and field with a formatted message.
func Errorf(line int, field string, format string, args ...any) *ParseError {
	return &ParseError{Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}
