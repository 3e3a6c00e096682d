// Package jsonw holds the low-level pieces of a JSON encoder that writes
// exactly what Python's json.dumps(..., indent=2) (ensure_ascii=True)
// writes: string escaping, float repr, indentation and naive ISO datetimes.
package jsonw

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

const hexDigits = "0123456789abcdef"

// safe[c] is true for ASCII bytes written as themselves: printable ASCII
// (0x20..0x7e) except '"' and '\\'.
var safe [utf8.RuneSelf]bool

func init() {
	for c := 0x20; c < 0x7f; c++ {
		safe[c] = c != '"' && c != '\\'
	}
}

// AppendString appends s as a JSON string literal with Python's
// ensure_ascii escaping: every character outside 0x20..0x7e is escaped
// (\n \r \t \b \f or \u00XX for controls, \uXXXX in lower-case hex for DEL
// and non-ASCII, surrogate pairs above U+FFFF); "/", "<", ">", "&" are not
// escaped. Invalid UTF-8 bytes are written as \ufffd.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendStringContent(dst, s)
	return append(dst, '"')
}

// AppendStringContent appends the escaped content of s, without the
// quotes. Pieces of a long string cut at rune boundaries (see CutRune) can
// be encoded one after the other.
func AppendStringContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"':
				dst = append(dst, '\\', '"')
			case '\\':
				dst = append(dst, '\\', '\\')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			r = utf8.RuneError
		}
		if r > 0xffff {
			r -= 0x10000
			dst = appendU(dst, 0xd800+(r>>10))
			dst = appendU(dst, 0xdc00+(r&0x3ff))
		} else {
			dst = appendU(dst, r)
		}
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// CutRune returns the longest prefix of s of at most n bytes (n >= 4) that
// does not end inside a UTF-8 sequence.
func CutRune(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for k := 0; k < utf8.UTFMax && i > 0 && !utf8.RuneStart(s[i]); k++ {
		i--
	}
	if i == 0 {
		i = n
	}
	return s[:i]
}

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// AppendFloat appends f as Python's json.dumps writes a float (repr), with
// NaN and ±Inf written as null (pydantic 2.11+ model_dump(mode="json")).
func AppendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return pyfmt.AppendFloat(dst, f)
}

// AppendInt appends an integer.
func AppendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// AppendIndent appends a newline and 2*level spaces.
func AppendIndent(dst []byte, level int) []byte {
	dst = append(dst, '\n')
	for i := 0; i < level; i++ {
		dst = append(dst, ' ', ' ')
	}
	return dst
}

// AppendTime appends t (converted to UTC) as a naive ISO-8601 JSON string
// like Python's datetime.isoformat(): "2025-01-02T03:04:05" with
// ".ffffff" only when the microseconds are not zero.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		dst = append(dst, '.')
		s := strconv.Itoa(us)
		for i := len(s); i < 6; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	}
	return append(dst, '"')
}
