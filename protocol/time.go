package protocol

import (
	"fmt"
	"strconv"
	"time"
)

// TimeParseError reports an unparsable ISO-8601 timestamp.
type TimeParseError struct {
	Value  string
	Pos    int // byte offset of the problem in Value
	Reason string
}

func (e *TimeParseError) Error() string {
	return fmt.Sprintf("protocol: invalid ISO-8601 time %q at offset %d: %s", e.Value, e.Pos, e.Reason)
}

// ParseISO parses an ISO-8601 timestamp leniently, as Celery does: a date
// "YYYY-MM-DD" optionally followed by any one separator character and
// "HH:MM[:SS[.fraction]]" (any number of fraction digits, "," accepted too),
// optionally followed by "Z" or an offset "±HH[:MM[:SS]]" / "±HHMM". A
// naive timestamp is UTC.
func ParseISO(s string) (time.Time, error) {
	p := isoParser{s: s}
	fail := func(reason string) (time.Time, error) {
		return time.Time{}, &TimeParseError{Value: s, Pos: p.i, Reason: reason}
	}
	year, ok := p.field(4, 4, 1, 9999)
	if !ok {
		return fail("expected a 4-digit year")
	}
	if !p.eat('-') {
		return fail("expected '-'")
	}
	month, ok := p.field(1, 2, 1, 12)
	if !ok {
		return fail("expected a month 1-12")
	}
	if !p.eat('-') {
		return fail("expected '-'")
	}
	day, ok := p.field(1, 2, 1, 31)
	if !ok {
		return fail("expected a day 1-31")
	}
	var hour, minute, sec, nsec int
	loc := time.UTC
	if p.i < len(s) {
		p.i++ // any separator ('T', ' ', ...)
		if hour, ok = p.field(2, 2, 0, 23); !ok {
			return fail("expected an hour 00-23")
		}
		if !p.eat(':') {
			return fail("expected ':'")
		}
		if minute, ok = p.field(2, 2, 0, 59); !ok {
			return fail("expected minutes 00-59")
		}
		if p.eat(':') {
			if sec, ok = p.field(2, 2, 0, 59); !ok {
				return fail("expected seconds 00-59")
			}
			if p.eat('.') || p.eat(',') {
				start := p.i
				for p.i < len(s) && s[p.i] >= '0' && s[p.i] <= '9' {
					p.i++
				}
				frac := s[start:p.i]
				if frac == "" {
					return fail("expected fraction digits")
				}
				for len(frac) < 9 {
					frac += "0"
				}
				nsec, _ = strconv.Atoi(frac[:9])
			}
		}
		if p.i < len(s) {
			switch c := s[p.i]; c {
			case 'Z', 'z':
				p.i++
			case '+', '-':
				p.i++
				oh, ok := p.field(2, 2, 0, 23)
				if !ok {
					return fail("expected offset hours")
				}
				var om, os int
				colon := p.eat(':')
				if p.i < len(s) {
					if om, ok = p.field(2, 2, 0, 59); !ok {
						return fail("expected offset minutes")
					}
					if colon && p.eat(':') {
						if os, ok = p.field(2, 2, 0, 59); !ok {
							return fail("expected offset seconds")
						}
					}
				} else if colon {
					return fail("expected offset minutes")
				}
				off := oh*3600 + om*60 + os
				if c == '-' {
					off = -off
				}
				if off != 0 {
					loc = time.FixedZone("", off)
				}
			default:
				return fail("unexpected character")
			}
		}
		if p.i != len(s) {
			return fail("trailing characters")
		}
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc)
	if t.Day() != day {
		p.i = len(s)
		return fail("day out of range for month")
	}
	return t, nil
}

type isoParser struct {
	s string
	i int
}

func (p *isoParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// field parses digits and checks lo <= n <= hi; on failure p.i stays at
// the start of the field.
func (p *isoParser) field(minN, maxN, lo, hi int) (int, bool) {
	start := p.i
	n, ok := p.digits(minN, maxN)
	if !ok || n < lo || n > hi {
		p.i = start
		return 0, false
	}
	return n, true
}

func (p *isoParser) digits(minN, maxN int) (int, bool) {
	start, n := p.i, 0
	for p.i < len(p.s) && p.i-start < maxN && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n = n*10 + int(p.s[p.i]-'0')
		p.i++
	}
	return n, p.i-start >= minN
}
