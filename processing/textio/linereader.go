// Package textio reads text files line by line the way Python's text mode
// does (universal newlines, strict UTF-8), with bounded memory, buffer reuse
// and context cancellation.
package textio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// DefaultMaxLineBytes is the line-length limit used when
// LineOptions.MaxLineBytes is zero. It is also the memory bound of one
// line: the accumulator of a long line never grows past it, and a longer
// line is refused before more is allocated. 16 MiB covers a VCF line of
// several hundred thousand samples or a CSV row of a million columns;
// longer lines are far more often a file that is not text.
const DefaultMaxLineBytes = 16 << 20

// ctxCheckLines is how many lines are read between two context checks. A
// context check is also made on every refill of the read buffer, so a
// cancellation is seen after at most one buffer (64 KiB) or this many lines.
const ctxCheckLines = 1024

const bufSize = 64 << 10

// releaseLongCap: a long-line accumulator larger than this is released
// before the next line instead of being kept for reuse.
const releaseLongCap = 4 << 20

// Sentinel errors; the typed errors below wrap them.
var (
	// ErrLineTooLong: a line exceeds LineOptions.MaxLineBytes.
	ErrLineTooLong = errors.New("line too long")
	// ErrInvalidUTF8: the input is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// LineTooLongError reports a line longer than the configured limit.
type LineTooLongError struct {
	Line  int   // 1-based physical line number
	Limit int   // the limit in bytes
	Off   int64 // byte offset of the start of the line
}

func (e *LineTooLongError) Error() string {
	return fmt.Sprintf("line %d: line is longer than %d bytes (is this a text file?)", e.Line, e.Limit)
}

// Unwrap returns ErrLineTooLong.
func (e *LineTooLongError) Unwrap() error { return ErrLineTooLong }

// UTF8Error reports an invalid UTF-8 byte sequence.
type UTF8Error struct {
	Line   int   // 1-based physical line number
	Column int   // 1-based byte column in the line
	Off    int64 // 0-based byte offset in the whole stream
	Byte   byte  // the first invalid byte
}

func (e *UTF8Error) Error() string {
	return fmt.Sprintf("line %d: invalid UTF-8 byte 0x%02x at column %d (byte offset %d); the file must be UTF-8 text", e.Line, e.Byte, e.Column, e.Off)
}

// Unwrap returns ErrInvalidUTF8.
func (e *UTF8Error) Unwrap() error { return ErrInvalidUTF8 }

// LineOptions configures a LineReader. The zero value is the default.
type LineOptions struct {
	// MaxLineBytes is the longest accepted line (without its terminator).
	// 0 means DefaultMaxLineBytes.
	MaxLineBytes int
	// SkipUTF8Check disables UTF-8 validation (for binary-safe callers).
	SkipUTF8Check bool
}

// LineReader returns the lines of a text stream. Lines end at "\n",
// "\r\n" or a lone "\r" (Python universal newlines); the terminator is not
// part of Line. A leading UTF-8 BOM is kept (as Python's "utf-8" codec does).
//
// Memory is bounded by MaxLineBytes plus a 64 KiB read buffer; the slice
// returned by Line is reused by the next call to Next.
type LineReader struct {
	r      io.Reader
	ctx    context.Context
	max    int
	check  bool
	buf    []byte // read buffer
	start  int    // start of unread data in buf
	end    int    // end of valid data in buf
	line   []byte // current line (points into buf or long)
	long   []byte // accumulator for lines crossing a buffer boundary
	n      int    // physical line number of the current line
	off    int64  // stream offset of the start of the next line
	lineOf int64  // stream offset of the current line
	term   bool   // current line had a terminator
	eof    bool   // the underlying reader returned io.EOF
	rerr   error  // a non-EOF read error waiting to be reported
	err    error  // terminal error
	done   bool
	cr     bool // the previous read ended on '\r' whose following '\n' must be skipped
	// cache of the next '\n' position in buf (see indexEOL)
	nlKnown bool
	nlPos   int
}

// NewLineReader returns a LineReader reading r.
func NewLineReader(r io.Reader, opts LineOptions) *LineReader {
	return NewLineReaderContext(context.Background(), r, opts)
}

// NewLineReaderContext returns a LineReader that stops with ctx.Err() once
// ctx is done (checked at every buffer refill and every 1024 lines).
func NewLineReaderContext(ctx context.Context, r io.Reader, opts LineOptions) *LineReader {
	max := opts.MaxLineBytes
	if max <= 0 {
		max = DefaultMaxLineBytes
	}
	return &LineReader{r: r, ctx: ctx, max: max, check: !opts.SkipUTF8Check, buf: make([]byte, bufSize)}
}

// Line returns the current line without its terminator. The slice is only
// valid until the next call to Next.
func (lr *LineReader) Line() []byte { return lr.line }

// Text returns the current line as a string (allocates).
func (lr *LineReader) Text() string { return string(lr.line) }

// LineNumber is the 1-based physical line number of the current line.
func (lr *LineReader) LineNumber() int { return lr.n }

// Offset is the byte offset of the start of the current line.
func (lr *LineReader) Offset() int64 { return lr.lineOf }

// Terminated reports whether the current line ended with a newline (false
// only for a last line without a terminator).
func (lr *LineReader) Terminated() bool { return lr.term }

// BytesRead is the number of bytes consumed so far (up to the end of the
// current line, terminator included).
func (lr *LineReader) BytesRead() int64 { return lr.off }

// Err returns the error that stopped Next, or nil at a clean end of input.
func (lr *LineReader) Err() error { return lr.err }

func (lr *LineReader) fail(err error) bool {
	lr.err = err
	lr.done = true
	lr.line = nil
	return false
}

// fill reads more data into buf, compacting it first. It returns false when
// no more data can come.
func (lr *LineReader) fill() bool {
	if lr.eof || lr.rerr != nil {
		return false
	}
	if err := lr.ctx.Err(); err != nil {
		lr.rerr = err
		return false
	}
	lr.nlKnown = false
	if lr.start > 0 {
		copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.end -= lr.start
		lr.start = 0
	}
	for tries := 0; tries < 100; tries++ {
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		if err == io.EOF {
			lr.eof = true
			return n > 0
		}
		if err != nil {
			lr.rerr = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	lr.rerr = io.ErrNoProgress
	return false
}

// Next advances to the next line. It returns false at the end of input or
// on an error (see Err).
func (lr *LineReader) Next() bool {
	if lr.done {
		return false
	}
	if lr.n%ctxCheckLines == ctxCheckLines-1 {
		if err := lr.ctx.Err(); err != nil {
			return lr.fail(err)
		}
	}
	if cap(lr.long) > releaseLongCap {
		lr.long = nil // do not keep a huge line's memory for the rest of the file
	}
	lr.long = lr.long[:0]
	useLong := false
	lr.lineOf = lr.off
	for {
		if lr.cr {
			// Skip the '\n' of a "\r\n" split across reads.
			if lr.start == lr.end && !lr.fill() {
				break
			}
			if lr.start < lr.end {
				lr.cr = false
				if lr.buf[lr.start] == '\n' {
					lr.start++
					lr.off++
					lr.lineOf = lr.off
				}
			}
			continue
		}
		data := lr.buf[lr.start:lr.end]
		i := lr.indexEOL()
		if i >= 0 {
			seg := data[:i]
			tlen := 1
			if data[i] == '\r' {
				if i+1 < len(data) {
					if data[i+1] == '\n' {
						tlen = 2
					}
				} else {
					lr.cr = true
				}
			}
			if useLong {
				if len(lr.long)+len(seg) > lr.max {
					return lr.tooLong()
				}
				lr.appendLong(seg)
				seg = lr.long
			} else if len(seg) > lr.max {
				return lr.tooLong()
			}
			lr.start += i + tlen
			return lr.emit(seg, true, int64(i+tlen))
		}
		// No terminator in the buffered data.
		if lr.eof || lr.rerr != nil {
			if lr.rerr != nil {
				return lr.fail(lr.rerr)
			}
			if len(data) == 0 && !useLong {
				lr.done = true
				lr.line = nil
				return false
			}
			seg := data
			if useLong {
				if len(lr.long)+len(data) > lr.max {
					return lr.tooLong()
				}
				lr.appendLong(data)
				seg = lr.long
			}
			if len(seg) > lr.max {
				return lr.tooLong()
			}
			lr.start = lr.end
			return lr.emit(seg, false, int64(len(data)))
		}
		if lr.start == 0 && lr.end == len(lr.buf) {
			// Buffer full without a terminator: move to the accumulator.
			if len(lr.long)+len(data) > lr.max {
				return lr.tooLong()
			}
			lr.appendLong(data)
			useLong = true
			lr.off += int64(len(data))
			lr.start, lr.end = 0, 0
		}
		lr.fill()
	}
	// Reached only via the cr branch when no more data is available.
	if lr.rerr != nil {
		return lr.fail(lr.rerr)
	}
	lr.done = true
	lr.line = nil
	return false
}

// appendLong appends b to the long-line accumulator (see AppendCapped).
func (lr *LineReader) appendLong(b []byte) {
	lr.long = AppendCapped(lr.long, b, lr.max)
}

// AppendCapped appends b to dst like append, but when dst must grow its
// capacity doubles only up to max (at least 128 KiB, at least what is
// needed): a buffer that a limit of max bytes bounds never holds more than
// max bytes, so memory stays at the limit and a line that turns out too
// long is refused without a larger allocation. The caller checks
// len(dst)+len(b) <= max first.
func AppendCapped(dst, b []byte, max int) []byte {
	need := len(dst) + len(b)
	if need > cap(dst) {
		c := 2 * cap(dst)
		if c < 2*bufSize {
			c = 2 * bufSize
		}
		if c > max {
			c = max
		}
		if c < need {
			c = need
		}
		n := make([]byte, len(dst), c)
		copy(n, dst)
		dst = n
	}
	return append(dst, b...)
}

// LongCap is the capacity of the long-line accumulator (for tests of the
// memory bound).
func (lr *LineReader) LongCap() int { return cap(lr.long) }

func (lr *LineReader) tooLong() bool {
	return lr.fail(&LineTooLongError{Line: lr.n + 1, Limit: lr.max, Off: lr.lineOf})
}

// emit makes seg the current line; consumed is the number of bytes taken
// from buf for it (the accumulated part was already counted).
func (lr *LineReader) emit(seg []byte, term bool, consumed int64) bool {
	lr.n++
	lr.line = seg
	lr.term = term
	if lr.check {
		if i := invalidUTF8(seg); i >= 0 {
			return lr.fail(&UTF8Error{Line: lr.n, Column: i + 1, Off: lr.lineOf + int64(i), Byte: seg[i]})
		}
	}
	lr.off += consumed
	return true
}

// indexEOL returns the index (relative to start) of the first '\n' or '\r'
// in the buffered data, or -1. The position of the next '\n' is cached so
// that files with lone-'\r' line ends are not rescanned for every line.
func (lr *LineReader) indexEOL() int {
	if !lr.nlKnown || (lr.nlPos >= 0 && lr.nlPos < lr.start) {
		lr.nlPos = -1
		if j := bytes.IndexByte(lr.buf[lr.start:lr.end], '\n'); j >= 0 {
			lr.nlPos = lr.start + j
		}
		lr.nlKnown = true
	}
	lim := lr.end
	if lr.nlPos >= 0 {
		lim = lr.nlPos
	}
	if j := bytes.IndexByte(lr.buf[lr.start:lim], '\r'); j >= 0 {
		return j
	}
	if lr.nlPos >= 0 {
		return lr.nlPos - lr.start
	}
	return -1
}

// invalidUTF8 returns the index of the first byte of an invalid UTF-8
// sequence in b, or -1 if b is valid.
func invalidUTF8(b []byte) int {
	// Fast path: utf8.Valid checks ASCII eight bytes at a time.
	if utf8.Valid(b) {
		return -1
	}
	i := 0
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}
