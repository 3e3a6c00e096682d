package pyfmt

import (
	"strconv"
	"time"
)

// FormatISO formats t like Python's aware datetime.isoformat():
// "2024-05-01T12:00:00.123456+00:00", the fraction omitted when the
// microseconds are 0, the offset of t's location ("+00:00" for UTC, never
// "Z"; seconds appended when the offset has them). Sub-microsecond
// precision is truncated.
func FormatISO(t time.Time) string {
	t = t.Truncate(time.Microsecond)
	dst := AppendISONaive(make([]byte, 0, 32), t)
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	dst = append(dst, sign)
	dst = append2(dst, off/3600)
	dst = append2(append(dst, ':'), off/60%60)
	if off%60 != 0 {
		dst = append2(append(dst, ':'), off%60)
	}
	return string(dst)
}

// FormatISONaive formats t's wall clock like Python's naive
// datetime.isoformat(): "2024-05-01T12:00:00.123456" (no offset; fraction
// omitted when 0). Callers wanting naive UTC pass t.UTC().
func FormatISONaive(t time.Time) string {
	return string(AppendISONaive(make([]byte, 0, 26), t))
}

// AppendISONaive appends FormatISONaive(t) to dst.
func AppendISONaive(dst []byte, t time.Time) []byte {
	dst = t.AppendFormat(dst, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		dst = append(dst, '.')
		s := strconv.Itoa(us)
		for i := len(s); i < 6; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, s...)
	}
	return dst
}

// append2 appends n (0..99) as two decimal digits.
func append2(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/10), byte('0'+n%10))
}
