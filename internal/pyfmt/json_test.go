package pyfmt

import (
	"math"
	"testing"
	"time"
)

// Expected strings are CPython 3.11 json.dumps output (ensure_ascii=True);
// invalid UTF-8, which a Python str cannot hold, is only tested here.
func TestAppendJSONString(t *testing.T) {
	tests := map[string]string{
		"abc":              `"abc"`,
		"</>&'":            `"</>&'"`,
		"\"\\":             `"\"\\"`,
		"\n\r\t\b\f":       `"\n\r\t\b\f"`,
		"\x00\x1f\x7f":     `"\u0000\u001f\u007f"`,
		"é\u4e2d":          `"\u00e9\u4e2d"`,
		"\U0001F600":       `"\ud83d\ude00"`,
		"\ufeffgene_id":    `"\ufeffgene_id"`,
		"\u2028\u00a0 ok ": `"\u2028\u00a0 ok "`,
		"bad\xff":          `"bad\ufffd"`,
	}
	for in, want := range tests {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("AppendJSONString(%q) = %s want %s", in, got, want)
		}
	}
}

func TestAppendJSONFloatISONaive(t *testing.T) {
	for f, want := range map[float64]string{30: "30.0", 1e-5: "1e-05", 1e16: "1e+16", math.Inf(1): "null", math.Inf(-1): "null"} {
		if got := string(AppendJSONFloat(nil, f)); got != want {
			t.Errorf("AppendJSONFloat(%v) = %s want %s", f, got, want)
		}
	}
	if got := string(AppendJSONFloat(nil, math.NaN())); got != "null" {
		t.Errorf("NaN -> %s", got)
	}
	loc := time.FixedZone("X", 3600)
	for tm, want := range map[time.Time]string{
		time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC): `2025-01-02T03:04:05.123456`,
		time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC):         `2025-01-02T03:04:05`,
		time.Date(2025, 1, 2, 3, 4, 5, 1000, time.UTC):      `2025-01-02T03:04:05.000001`,
		time.Date(2025, 1, 2, 4, 4, 5, 999, loc):            `2025-01-02T03:04:05`,
	} {
		if got := string(AppendISONaive(nil, tm.UTC())); got != want {
			t.Errorf("AppendISONaive(%v) = %s want %s", tm, got, want)
		}
	}
}
