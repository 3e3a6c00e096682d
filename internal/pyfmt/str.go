package pyfmt

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// IsSpace reports whether r is whitespace for Python str.isspace() and
// str.strip(): Go's unicode.IsSpace plus the ASCII separators U+001C..U+001F.
func IsSpace(r rune) bool {
	if r < utf8.RuneSelf {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f:
			return true
		}
		return false
	}
	return unicode.IsSpace(r)
}

// Strip is Python str.strip() with no argument.
func Strip(s string) string {
	i, j := stripBounds(s)
	return s[i:j]
}

// StripBytes is Strip for a byte slice (no allocation).
func StripBytes(b []byte) []byte {
	i, j := stripBounds(b)
	return b[i:j]
}

// stripBounds returns the bounds of s without its leading and trailing
// Python whitespace. Only a non-ASCII edge is decoded, through a window of
// at most utf8.UTFMax bytes (converting it does not allocate).
func stripBounds[T ~string | ~[]byte](s T) (i, j int) {
	i, j = 0, len(s)
	for i < j {
		n := 1
		if c := s[i]; c < utf8.RuneSelf {
			if !IsSpace(rune(c)) {
				break
			}
		} else {
			var r rune
			r, n = utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, j)]))
			if !IsSpace(r) {
				break
			}
		}
		i += n
	}
	for j > i {
		n := 1
		if c := s[j-1]; c < utf8.RuneSelf {
			if !IsSpace(rune(c)) {
				break
			}
		} else {
			var r rune
			r, n = utf8.DecodeLastRuneInString(string(s[max(i, j-utf8.UTFMax):j]))
			if !IsSpace(r) {
				break
			}
		}
		j -= n
	}
	return i, j
}

// PyLower is Python's str.lower(): the full Unicode lower-case mapping,
// which differs from Go's strings.ToLower (the simple mapping) in two
// places: U+0130 (LATIN CAPITAL LETTER I WITH DOT ABOVE) becomes "i" +
// U+0307 COMBINING DOT ABOVE, not a plain "i", and a capital sigma at the
// end of a word becomes the final form U+03C2, not U+03C3. The first one
// changes which ASCII keywords and extensions match ("POSİTION" does not
// contain "position" for Python). Every comparison of lower-cased names
// with Python semantics (detection keywords and extensions, format names,
// mzML/MGF keys) uses this one function.
func PyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	if !strings.ContainsRune(s, '\u0130') && !strings.ContainsRune(s, 'Σ') {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i, r := range s {
		switch r {
		case '\u0130':
			b.WriteString("i\u0307")
		case 'Σ':
			if finalSigma(s, i) {
				b.WriteRune('ς')
			} else {
				b.WriteRune('σ')
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma is the Final_Sigma condition of Unicode SpecialCasing as
// CPython applies it: the sigma at byte i is preceded by a cased letter
// and not followed by one, skipping case-ignorable characters both ways.
func finalSigma(s string, i int) bool {
	j := i
	before := false
	for j > 0 {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		if caseIgnorable(r) {
			continue
		}
		before = cased(r)
		break
	}
	if !before {
		return false
	}
	for j = i + len("Σ"); j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		if caseIgnorable(r) {
			continue
		}
		return !cased(r)
	}
	return true
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', 0xb7, 0x2018, 0x2019, 0x2024, 0x2027, 0xfe13, 0xfe52, 0xfe55, 0xff07, 0xff0e, 0xff1a:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
