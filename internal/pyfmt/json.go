package pyfmt

import (
	"math"
	"strings"
	"unicode/utf8"
)

// jsonSafe[c] is true for ASCII bytes json.dumps writes as themselves:
// printable ASCII (0x20..0x7e) except '"' and '\\'; false for every byte
// >= 0x80.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendJSONString appends s as a JSON string literal with json.dumps'
// default ensure_ascii escaping: every character outside 0x20..0x7e is
// escaped (\n \r \t \b \f, or \u00XX for the other controls; \uXXXX in
// lower-case hex for DEL and non-ASCII; a surrogate pair above U+FFFF);
// "/", "<", ">", "&" are not escaped. Invalid UTF-8 bytes become \ufffd.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = AppendJSONStringContent(dst, s)
	return append(dst, '"')
}

// AppendJSONStringContent appends the escaped content of s, without the
// quotes. Pieces of a long string cut at rune boundaries can be encoded
// one after the other.
func AppendJSONStringContent(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Fast path: eight bytes at a time while none needs escaping.
		for i+8 <= len(s) && safe8(load64(s, i)) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendJSONASCII(append(dst, s[start:i]...), c)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		r, size := utf8.DecodeRuneInString(s[i:])
		dst = AppendJSONRune(dst, r)
		i += size
		start = i
	}
	return append(dst, s[start:]...)
}

// load64 reads s[i:i+8] as a little-endian word (one load).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// safe8 reports whether all eight bytes of x are jsonSafe: none below
// 0x20 or above 0x7e, none '"' or '\\' (exact: the SWAR tests below can
// only report a byte that needs escaping or a byte above one that does).
func safe8(x uint64) bool {
	low := (x - 0x20*lsb8) &^ x                       // a byte < 0x20 (or above one)
	high := x | (x + lsb8)                            // a byte >= 0x7f
	q := ((x ^ '"'*lsb8) - lsb8) &^ (x ^ '"'*lsb8)    // a '"'
	bs := ((x ^ '\\'*lsb8) - lsb8) &^ (x ^ '\\'*lsb8) // a '\\'
	return (low|high|q|bs)&msb8 == 0
}

// jsonShortEscape[c] is the letter of json.dumps' two-character escape
// of the ASCII byte c (\" \\ \n \r \t \b \f), or 0 where c is written
// as \u00XX.
var jsonShortEscape = [utf8.RuneSelf]byte{
	'"': '"', '\\': '\\', '\n': 'n', '\r': 'r', '\t': 't', '\b': 'b', '\f': 'f',
}

// appendJSONASCII appends the json.dumps escape of the ASCII byte c.
func appendJSONASCII(dst []byte, c byte) []byte {
	if e := jsonShortEscape[c]; e != 0 {
		return append(dst, '\\', e)
	}
	return appendHex(append(dst, '\\', 'u'), rune(c), 4)
}

// AppendJSONRune appends the ensure_ascii escape of one character at or
// above DEL: \uXXXX, or a surrogate pair \uXXXX\uXXXX above U+FFFF.
func AppendJSONRune(dst []byte, r rune) []byte {
	if r > 0xffff {
		r -= 0x10000
		dst = appendHex(append(dst, '\\', 'u'), 0xd800+(r>>10), 4)
		return appendHex(append(dst, '\\', 'u'), 0xdc00+(r&0x3ff), 4)
	}
	return appendHex(append(dst, '\\', 'u'), r, 4)
}

// AppendJSONFloat appends f as json.dumps writes a float (its repr: 2.0
// stays "2.0", so Python decodes a float, not an int), except that NaN and
// ±Inf, which json.dumps would write as the invalid NaN/Infinity, are
// written as null, like pydantic's model_dump(mode="json").
func AppendJSONFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return AppendFloat(dst, f)
}

// AppendIndent appends a newline and 2*level spaces, as json.dumps with
// indent=2 does before each member and closing bracket.
func AppendIndent(dst []byte, level int) []byte {
	if n := 1 + 2*level; n <= len(indentText) {
		return append(dst, indentText[:n]...)
	}
	dst = append(dst, '\n')
	for i := 0; i < level; i++ {
		dst = append(dst, ' ', ' ')
	}
	return dst
}

// indentText is a newline and the indentation of levels up to 31.
var indentText = "\n" + strings.Repeat(" ", 62)
