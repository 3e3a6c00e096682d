package pyfmt

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

// Expected values were produced with CPython 3.11.7 (int(), float(), repr()).

func TestParseFloat(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1_0", 10, true}, {"1__0", 0, false}, {"_1", 0, false}, {"1_", 0, false},
		{"٣", 3, true}, {"1_0.5", 10.5, true}, {"1_.5", 0, false}, {"1._5", 0, false},
		{"1e1_0", 1e10, true}, {"-inf", math.Inf(-1), true}, {"infinity", math.Inf(1), true},
		{"INFinity", math.Inf(1), true}, {"+Inf", math.Inf(1), true},
		{"infinitx", 0, false}, {"1e400", math.Inf(1), true}, {"-1e400", math.Inf(-1), true},
		{".5", 0.5, true}, {"5.", 5, true}, {".", 0, false}, {"e5", 0, false}, {"1e", 0, false},
		{"0x10", 0, false}, {"1.5e+300", 1.5e300, true}, {" 1 ", 1, true},
		{"\x1c1\x1f", 0, false}, {"１２", 12, true}, {"\u00851", 1, true}, {"\u00a01 ", 1, true},
		{"\u30001", 1, true}, {"\v1\f", 1, true}, {"1\x00", 0, false}, {"٣_٣", 33, true},
		{"𝟏𝟐", 12, true}, {"1e٣", 1000, true}, {"４.５e１", 45, true}, {"", 0, false},
		{"NA", 0, false}, {"-0", math.Copysign(0, -1), true}, {"1e-400", 0, true},
		{"100", 100, true}, {"30.0", 30, true}, {" 7 ", 7, true}, {"1e3", 1000, true},
		{"1,5", 0, false}, {"--1", 0, false}, {"+", 0, false}, {"nan1", 0, false},
		{"1 2", 0, false}, {"\xff", 0, false}, {"0.1", 0.1, true},
	}
	for _, tc := range tests {
		got, ok := ParseFloat(tc.in)
		if ok != tc.ok || (ok && (got != tc.want || math.Signbit(got) != math.Signbit(tc.want))) {
			t.Errorf("ParseFloat(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	for _, s := range []string{"nan", "NaN", "-nan", "+nan", " nan\u00a0"} {
		if f, ok := ParseFloat(s); !ok || !math.IsNaN(f) {
			t.Errorf("ParseFloat(%q) = %v, %v", s, f, ok)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error
	}{
		{"007", 7, nil}, {"+7", 7, nil}, {"-0", 0, nil}, {"1_000", 1000, nil},
		{"1__0", 0, ErrSyntax}, {" 12 ", 12, nil}, {"٣", 3, nil}, {"1.0", 0, ErrSyntax},
		{"", 0, ErrSyntax}, {"\x1c1", 0, ErrSyntax}, {"\u00851", 1, nil}, {"1\x00", 0, ErrSyntax},
		{"٣_٣", 33, nil}, {"𝟏𝟐", 12, nil}, {"+", 0, ErrSyntax}, {"-", 0, ErrSyntax},
		{"9223372036854775807", math.MaxInt64, nil}, {"-9223372036854775808", math.MinInt64, nil},
		{"9223372036854775808", 0, ErrRange}, {"-9223372036854775809", 0, ErrRange},
		{strings.Repeat("9", 30), 0, ErrRange}, {strings.Repeat("1", 4301), 0, ErrSyntax},
		{"abc", 0, ErrSyntax}, {"1e3", 0, ErrSyntax}, {"0x10", 0, ErrSyntax}, {"_1", 0, ErrSyntax},
		{"1_", 0, ErrSyntax}, {"-_1", 0, ErrSyntax}, {"0000000000000000000000001", 1, nil},
	}
	for _, tc := range tests {
		got, err := ParseIntErr(tc.in)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) || got != tc.want {
			t.Errorf("ParseIntErr(%q) = %v, %v; want %v, %v", tc.in, got, err, tc.want, tc.err)
		}
		if _, ok := ParseInt(tc.in); ok != (tc.err == nil) {
			t.Errorf("ParseInt(%q) ok = %v", tc.in, ok)
		}
	}
	for in, want := range map[string]string{
		strings.Repeat("9", 30): strings.Repeat("9", 30), "-000123": "-123", "-0": "0", "+1_0": "10",
	} {
		if got, ok := ParseBigInt(in); !ok || got != want {
			t.Errorf("ParseBigInt(%q) = %q, %v", in, got, ok)
		}
	}
}

func TestStrip(t *testing.T) {
	tests := map[string]string{
		"": "", "  a b  ": "a b", "\x1c\x1d a \x1e\x1f": "a", "\u00a0\u3000x\u2029": "x",
		"\u0085\t\n\v\f\rx\r\n": "x", "\ufeffx": "\ufeffx", "\u200bx": "\u200bx", "   ": "",
		"é ": "é",
	}
	for in, want := range tests {
		if got := Strip(in); got != want {
			t.Errorf("Strip(%q) = %q want %q", in, got, want)
		}
		if got := string(StripBytes([]byte(in))); got != want {
			t.Errorf("StripBytes(%q) = %q want %q", in, got, want)
		}
	}
}

func TestFormatFloat(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{1e-5, "1e-05"}, {1e16, "1e+16"}, {1e15, "1000000000000000.0"},
		{9999999999999998.0, "9999999999999998.0"}, {0.0001, "0.0001"},
		{math.Copysign(0, -1), "-0.0"}, {0, "0.0"}, {1.5e300, "1.5e+300"},
		{123456789012345678.0, "1.2345678901234568e+17"}, {0.30000000000000004, "0.30000000000000004"},
		{5e-324, "5e-324"}, {1e22, "1e+22"}, {30, "30.0"}, {-2.5, "-2.5"},
		{123.456, "123.456"}, {1.5e-7, "1.5e-07"}, {0.00012, "0.00012"}, {-1e100, "-1e+100"},
		{math.NaN(), "nan"}, {math.Inf(1), "inf"}, {math.Inf(-1), "-inf"},
		{1234567890123456.7, "1234567890123456.8"}, {12345678901234567.0, "1.2345678901234568e+16"},
		{100, "100.0"}, {-100, "-100.0"}, {math.MaxFloat64, "1.7976931348623157e+308"},
	}
	for _, tc := range tests {
		if got := FormatFloat(tc.in); got != tc.want {
			t.Errorf("FormatFloat(%v) = %q want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"1", "-1.5e10", "1_0", "nan", "inf", " 3 ", ".5", "1e400", "٣", "0x1p3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseFloat(s)
		if simpleFloat(s) {
			want, err := strconv.ParseFloat(s, 64)
			if err != nil && !strings.Contains(err.Error(), "range") {
				t.Fatalf("strconv rejects %q: %v", s, err)
			}
			if !ok || (got != want && !(math.IsNaN(got) && math.IsNaN(want))) {
				t.Fatalf("ParseFloat(%q) = %v, %v; strconv %v", s, got, ok, want)
			}
		}
		if ok && !math.IsNaN(got) && !math.IsInf(got, 0) {
			// repr round-trips.
			r := FormatFloat(got)
			back, ok2 := ParseFloat(r)
			if !ok2 || back != got {
				t.Fatalf("repr %q of %v does not round-trip", r, got)
			}
		}
	})
}

func FuzzParseInt(f *testing.F) {
	for _, s := range []string{"1", "-12", "1_000", " 7 ", "9223372036854775808", "٣", "+0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseIntErr(s)
		want, serr := strconv.ParseInt(s, 10, 64)
		if serr == nil && (err != nil || got != want) {
			t.Fatalf("ParseIntErr(%q) = %v, %v; strconv %v", s, got, err, want)
		}
		if err == nil {
			big, ok := ParseBigInt(s)
			if !ok || big != strconv.FormatInt(got, 10) {
				t.Fatalf("ParseBigInt(%q) = %q, %v; want %d", s, big, ok, got)
			}
		}
	})
}

func BenchmarkParseFloat(b *testing.B) {
	in := []string{"12.5", "100", "1e-3", "NA", "0.000123"}
	for b.Loop() {
		for _, s := range in {
			ParseFloat(s)
		}
	}
}

func BenchmarkFormatFloat(b *testing.B) {
	var buf []byte
	for b.Loop() {
		buf = AppendFloat(buf[:0], 12.5)
		buf = AppendFloat(buf[:0], 0.000123)
		buf = AppendFloat(buf[:0], 100)
	}
}

// TestPyLower: Python 3.11 str.lower() results (issue 9 #15: detection
// used Go's strings.ToLower, which maps U+0130 to a plain "i").
func TestPyLower(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""}, {"x.CSV", "x.csv"}, {"\u0130", "i\u0307"}, {"POS\u0130TION", "posi\u0307tion"},
		{"ΟΔΟΣ", "οδος"}, {"ΟΔΟΣ.", "οδος."}, {"ΣΑ", "σα"}, {"AΣ", "aς"}, {"Σ", "σ"},
		{"aΣ'", "aς'"}, {"aΣ'b", "aσ'b"}, {"Ǆ", "ǆ"}, {"ǅ", "ǆ"}, {"\u212a", "k"}, {"É\u0130", "éi\u0307"},
	} {
		if got := PyLower(tc.in); got != tc.want {
			t.Errorf("PyLower(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStripBytesNoAlloc(t *testing.T) {
	b := []byte("\u3000\u00a0 gene \u2028\u0085")
	if n := testing.AllocsPerRun(100, func() { _ = StripBytes(b) }); n != 0 {
		t.Errorf("StripBytes allocates %v times", n)
	}
	if got := string(StripBytes(b)); got != "gene" {
		t.Errorf("StripBytes = %q", got)
	}
}
