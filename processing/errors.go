package processing

import (
	"errors"
	"fmt"
	"io"

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
	// ErrOutput: writing the document or the record spool failed (disk
	// full, I/O error, read-only file system...). It is a fault of the
	// machine that converts, never of the input: Convert returns it as its
	// error, not as Result.Err. Test with errors.Is; *OutputError carries
	// the operation.
	ErrOutput = errors.New("writing the converted output failed")
	// ErrUTF16: the text is UTF-16 (or UTF-32), not UTF-8. It is also
	// ErrInvalidUTF8, the condition under which Python refuses the file.
	ErrUTF16 = fmt.Errorf("the file is UTF-16 text, not UTF-8: %w", ErrInvalidUTF8)
	// ErrHeadChanged: with Options.Stream, the converter's headers or
	// custom_fields changed after the document head was written (a VCF
	// whose ##fileformat= line comes after its first record: the last one
	// wins). Convert returns it as its error; w then holds a partial
	// document: discard it and convert again without Stream. Not a fault
	// of the file.
	ErrHeadChanged = errors.New("processing: headers or custom_fields changed after the streamed head; convert again without Stream")
)

// OutputError is an error of the output side of a conversion: the record
// spool (Op "creating record spool", "writing record spool", "reading
// record spool") or the destination writer ("writing the document"). It
// matches ErrOutput with errors.Is and unwraps to the cause (often an
// *os.PathError wrapping a syscall.Errno such as ENOSPC).
type OutputError struct {
	Op  string
	Err error
}

func (e *OutputError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *OutputError) Unwrap() error { return e.Err }

// Is reports whether target is ErrOutput.
func (e *OutputError) Is(target error) bool { return target == ErrOutput }

// outputErr wraps err as an *OutputError of op, unless it already is one
// (or is nil).
func outputErr(op string, err error) error {
	if err == nil || errors.Is(err, ErrOutput) {
		return err
	}
	return &OutputError{Op: op, Err: err}
}

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

// Operations of an *OutputError.
const (
	opWriteDoc   = "writing the document"
	opWriteSpool = "writing record spool"
	opReadSpool  = "reading record spool"
)

// outputWriter marks every write error of w as an *OutputError, so that
// io.Copy's errors can be told apart (write side vs read side).
type outputWriter struct{ w io.Writer }

func (o outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	return n, outputErr(opWriteDoc, err)
}
