package protocol

import (
	"errors"
	"testing"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

func TestFormatISO(t *testing.T) {
	cest := time.FixedZone("CEST", 2*3600)
	ist := time.FixedZone("IST", 5*3600+1800)
	neg := time.FixedZone("X", -(3*3600 + 30*60))
	tests := []struct {
		t          time.Time
		aware, nai string
	}{
		{time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00"},
		{time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC), "2024-05-01T12:00:00.123456+00:00", "2024-05-01T12:00:00.123456"},
		{time.Date(2024, 5, 1, 12, 0, 0, 1000, time.UTC), "2024-05-01T12:00:00.000001+00:00", "2024-05-01T12:00:00.000001"},
		{time.Date(2024, 5, 1, 12, 0, 0, 999, time.UTC), "2024-05-01T12:00:00+00:00", "2024-05-01T12:00:00"},
		{time.Date(2024, 5, 1, 14, 0, 0, 0, cest), "2024-05-01T14:00:00+02:00", "2024-05-01T14:00:00"},
		{time.Date(2024, 5, 1, 14, 0, 0, 0, ist), "2024-05-01T14:00:00+05:30", "2024-05-01T14:00:00"},
		{time.Date(2024, 5, 1, 14, 0, 0, 0, neg), "2024-05-01T14:00:00-03:30", "2024-05-01T14:00:00"},
		{time.Date(999, 1, 2, 3, 4, 5, 0, time.UTC), "0999-01-02T03:04:05+00:00", "0999-01-02T03:04:05"},
	}
	for _, tc := range tests {
		if got := pyfmt.FormatISO(tc.t); got != tc.aware {
			t.Errorf("pyfmt.FormatISO(%v) = %q, want %q", tc.t, got, tc.aware)
		}
		if got := pyfmt.FormatISONaive(tc.t); got != tc.nai {
			t.Errorf("pyfmt.FormatISONaive(%v) = %q, want %q", tc.t, got, tc.nai)
		}
		back, err := ParseISO(tc.aware)
		if err != nil || !back.Equal(tc.t.Truncate(time.Microsecond)) {
			t.Errorf("ParseISO(%q) = %v, %v", tc.aware, back, err)
		}
	}
}

func TestParseISO(t *testing.T) {
	utc := func(y, mo, d, h, mi, s, ns int) time.Time {
		return time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2024-05-01T12:00:00", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01T12:00:00Z", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01T12:00:00.5Z", utc(2024, 5, 1, 12, 0, 0, 5e8)},
		{"2024-05-01T12:00:00.123456789123+00:00", utc(2024, 5, 1, 12, 0, 0, 123456789)},
		{"2024-05-01 12:00:00,25", utc(2024, 5, 1, 12, 0, 0, 25e7)},
		{"2024-05-01T14:30:00+02:30", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01T10:00:00-0200", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01T10:00:00-02", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01T12:00", utc(2024, 5, 1, 12, 0, 0, 0)},
		{"2024-05-01", utc(2024, 5, 1, 0, 0, 0, 0)},
		{"2024-5-1T12:00:00", utc(2024, 5, 1, 12, 0, 0, 0)},
	}
	for _, tc := range tests {
		got, err := ParseISO(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseISO(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct {
		in  string
		pos int
	}{
		{"", 0}, {"tomorrow", 0}, {"2024-13-01", 5}, {"2024-02-30", 10}, {"2024-05-01T12", 13},
		{"2024-05-01T12:00:00+", 20}, {"2024-05-01T12:00:00.", 20}, {"2024-05-01T12:00:00 UTC", 19},
		{"2024-05-01T25:00:00", 11},
	}
	for _, tc := range bad {
		_, err := ParseISO(tc.in)
		var pe *TimeParseError
		if !errors.As(err, &pe) {
			t.Errorf("ParseISO(%q) err = %v, want *TimeParseError", tc.in, err)
			continue
		}
		if pe.Pos != tc.pos {
			t.Errorf("ParseISO(%q) pos = %d, want %d (%v)", tc.in, pe.Pos, tc.pos, err)
		}
	}
}
