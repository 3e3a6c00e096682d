package pyfmt

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors returned by ParseIntErr.
var (
	// ErrSyntax: the text is not a Python integer/float literal.
	ErrSyntax = errors.New("invalid syntax")
	// ErrRange: a valid Python int that does not fit in int64 (Python
	// would accept it as a big integer; see ParseBigInt).
	ErrRange = errors.New("integer out of int64 range")
)

// MaxIntDigits is Python's default int_max_str_digits: int() refuses
// longer decimal strings.
const MaxIntDigits = 4300

// numSpace is the whitespace int() and float() strip: ASCII " \t\n\v\f\r"
// and every non-ASCII Unicode space, but not U+001C..U+001F.
func numSpace(r rune) bool {
	if r < utf8.RuneSelf {
		switch r {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return true
		}
		return false
	}
	return unicode.IsSpace(r)
}

// toASCII mirrors CPython's _PyUnicode_TransformDecimalAndSpaceToASCII
// followed by stripping: non-ASCII Unicode digits (category Nd) become
// ASCII digits, non-ASCII spaces become ' ', and the result is trimmed of
// ASCII whitespace. ok is false when a non-ASCII character that is neither
// a digit nor a space is present (Python then rejects the literal).
func toASCII(s string) (string, bool) {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if !ascii {
		var b strings.Builder
		b.Grow(len(s))
		for _, r := range s {
			switch {
			case r < utf8.RuneSelf:
				b.WriteByte(byte(r))
			case r == utf8.RuneError:
				return "", false
			case unicode.IsSpace(r):
				b.WriteByte(' ')
			case unicode.Is(unicode.Nd, r):
				b.WriteByte(byte('0' + digitValue(r)))
			default:
				return "", false
			}
		}
		s = b.String()
	}
	i, j := 0, len(s)
	for i < j && numSpace(rune(s[i])) {
		i++
	}
	for j > i && numSpace(rune(s[j-1])) {
		j--
	}
	return s[i:j], true
}

// digitValue returns the decimal value of a Unicode Nd digit: Nd digits
// come in runs of ten consecutive code points starting at zero.
func digitValue(r rune) int {
	start := r
	for unicode.Is(unicode.Nd, start-1) {
		start--
	}
	return int(r-start) % 10
}

// cleanInt validates a stripped ASCII Python int literal (base 10) and
// returns its sign and digits without underscores.
func cleanInt(s string) (neg bool, digits string, ok bool) {
	if s == "" {
		return false, "", false
	}
	if s[0] == '+' || s[0] == '-' {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "" {
		return false, "", false
	}
	hasUnderscore := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
		case c == '_':
			if i == 0 || i == len(s)-1 || s[i-1] == '_' {
				return false, "", false
			}
			hasUnderscore = true
		default:
			return false, "", false
		}
	}
	if hasUnderscore {
		s = strings.ReplaceAll(s, "_", "")
	}
	if len(s) > MaxIntDigits {
		return false, "", false
	}
	return neg, s, true
}

// ParseInt is Python int(s) (base 10) restricted to int64: ok is false
// for anything int() rejects and for values outside int64 (use ParseIntErr
// to tell the two apart and ParseBigInt to get such a value).
func ParseInt(s string) (int64, bool) {
	v, err := ParseIntErr(s)
	return v, err == nil
}

// ParseIntErr is ParseInt returning ErrSyntax or ErrRange.
func ParseIntErr(s string) (int64, error) {
	// Fast path: short plain ASCII digits.
	if n := len(s); n > 0 && n < 19 {
		var v int64
		i := 0
		neg := false
		if s[0] == '-' || s[0] == '+' {
			neg = s[0] == '-'
			i = 1
		}
		if i < n {
			j := i
			for ; j < n; j++ {
				c := s[j]
				if c < '0' || c > '9' {
					break
				}
				v = v*10 + int64(c-'0')
			}
			if j == n {
				if neg {
					v = -v
				}
				return v, nil
			}
		}
	}
	t, ok := toASCII(s)
	if !ok {
		return 0, ErrSyntax
	}
	neg, digits, ok := cleanInt(t)
	if !ok {
		return 0, ErrSyntax
	}
	u, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, ErrRange
	}
	if neg {
		if u > 1<<63 {
			return 0, ErrRange
		}
		return -int64(u), nil
	}
	if u > math.MaxInt64 {
		return 0, ErrRange
	}
	return int64(u), nil
}

// ParseBigInt is Python int(s) for any size: it returns the canonical
// decimal text of the value (no leading zeros, "-" sign only when
// negative, "0" for zero), suitable to be written as a JSON number.
func ParseBigInt(s string) (string, bool) {
	t, ok := toASCII(s)
	if !ok {
		return "", false
	}
	neg, digits, ok := cleanInt(t)
	if !ok {
		return "", false
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return "0", true
	}
	if neg {
		return "-" + digits, true
	}
	return digits, true
}

// ParseFloat is Python float(s): surrounding whitespace, sign, decimal or
// exponent form, single underscores between digits, case-insensitive
// "nan", "inf", "infinity"; no hex. Overflow gives ±Inf.
func ParseFloat(s string) (float64, bool) {
	// Fast path: plain ASCII decimal accepted by both languages.
	if simpleFloat(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err == nil {
			return f, true
		}
		if errors.Is(err, strconv.ErrRange) {
			return f, true
		}
	}
	t, ok := toASCII(s)
	if !ok || t == "" {
		return 0, false
	}
	body := t
	neg := false
	if body[0] == '+' || body[0] == '-' {
		neg = body[0] == '-'
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "nan":
		if neg {
			return math.Copysign(math.NaN(), -1), true
		}
		return math.NaN(), true
	case "inf", "infinity":
		if neg {
			return math.Inf(-1), true
		}
		return math.Inf(1), true
	}
	clean, ok := cleanFloat(body)
	if !ok {
		return 0, false
	}
	if neg {
		clean = "-" + clean
	}
	f, err := strconv.ParseFloat(clean, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return f, true
		}
		return 0, false
	}
	return f, true
}

// simpleFloat reports whether s is [sign] digits [. digits] [e [sign] digits]
// with at least one mantissa digit, in plain ASCII without underscores.
func simpleFloat(s string) bool {
	i, n := 0, len(s)
	if i < n && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := 0
	for i < n && s[i] >= '0' && s[i] <= '9' {
		i++
		d++
	}
	if i < n && s[i] == '.' {
		i++
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
			d++
		}
	}
	if d == 0 {
		return false
	}
	if i < n && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < n && (s[i] == '+' || s[i] == '-') {
			i++
		}
		e := 0
		for i < n && s[i] >= '0' && s[i] <= '9' {
			i++
			e++
		}
		if e == 0 {
			return false
		}
	}
	return i == n
}

// cleanFloat validates an unsigned Python float literal body and returns
// it without underscores (each '_' must sit between two digits).
func cleanFloat(s string) (string, bool) {
	if strings.IndexByte(s, '_') >= 0 {
		for i := 0; i < len(s); i++ {
			if s[i] == '_' {
				if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
					return "", false
				}
			}
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	if !simpleFloat(s) || s[0] == '+' || s[0] == '-' {
		return "", false
	}
	return s, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// FormatFloat is Python repr(float): the shortest text that round-trips,
// always with a fraction or an exponent ("30.0", "-0.0", "1e-05",
// "1e+16", "1.5e+300"); "nan", "inf", "-inf" for the special values.
func FormatFloat(f float64) string {
	return string(AppendFloat(nil, f))
}

// AppendFloat appends FormatFloat(f) to dst.
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "nan"...)
	case math.IsInf(f, 1):
		return append(dst, "inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-inf"...)
	}
	// Integral values of moderate size: fast and common ("100.0").
	if f == math.Trunc(f) && math.Abs(f) < 1e15 && !(f == 0 && math.Signbit(f)) {
		dst = strconv.AppendInt(dst, int64(f), 10)
		return append(dst, '.', '0')
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	// e is [-]d[.ddd]e±XX
	neg := false
	if e[0] == '-' {
		neg = true
		e = e[1:]
	}
	epos := 0
	for epos < len(e) && e[epos] != 'e' {
		epos++
	}
	mant := e[:epos]
	exp, _ := strconv.Atoi(string(e[epos+1:]))
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	ds := digits[:nd]
	if neg {
		dst = append(dst, '-')
	}
	if exp < -4 || exp >= 16 {
		dst = append(dst, ds[0])
		if nd > 1 {
			dst = append(dst, '.')
			dst = append(dst, ds[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, '0', '.')
		for i := 0; i < -exp-1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, ds...)
	}
	// exp >= 0: decimal point after exp+1 digits.
	if nd <= exp+1 {
		dst = append(dst, ds...)
		for i := nd; i < exp+1; i++ {
			dst = append(dst, '0')
		}
		return append(dst, '.', '0')
	}
	dst = append(dst, ds[:exp+1]...)
	dst = append(dst, '.')
	return append(dst, ds[exp+1:]...)
}
