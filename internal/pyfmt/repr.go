package pyfmt

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// ReprString is Python's repr() of a str: single quotes, or double quotes
// when the text holds ' and no "; backslash escapes for the quote, '\\',
// \t \n \r; \xNN for the other controls, DEL and non-printable Latin-1;
// \uNNNN and \UNNNNNNNN for the other non-printable characters.
func ReprString(s string) string {
	return string(AppendReprString(make([]byte, 0, len(s)+2), s))
}

// AppendReprString appends ReprString(s) to dst. Invalid UTF-8 bytes are
// written as U+FFFD (a Python str cannot hold them).
func AppendReprString(dst []byte, s string) []byte {
	quote := byte('\'')
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		quote = '"'
	}
	dst = append(dst, quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r < 0x20 || r == 0x7f:
			dst = appendHex(append(dst, '\\', 'x'), r, 2)
		case r < 0x7f:
			dst = append(dst, byte(r))
		case printable(r):
			dst = utf8.AppendRune(dst, r)
		case r <= 0xff:
			dst = appendHex(append(dst, '\\', 'x'), r, 2)
		case r <= 0xffff:
			dst = appendHex(append(dst, '\\', 'u'), r, 4)
		default:
			dst = appendHex(append(dst, '\\', 'U'), r, 8)
		}
	}
	return append(dst, quote)
}

// printable approximates Python's str.isprintable for one character: not
// in categories Cc, Cf, Cs, Co, Cn, Zl, Zp, Zs (except space). Go's and
// CPython's Unicode versions may differ for characters assigned lately.
func printable(r rune) bool {
	if r == utf8.RuneError {
		return true // U+FFFD is a printable symbol
	}
	return unicode.IsPrint(r)
}

// appendHex appends r as n lower-case hex digits.
func appendHex(dst []byte, r rune, n int) []byte {
	for shift := 4 * (n - 1); shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[r>>shift&0xf])
	}
	return dst
}
