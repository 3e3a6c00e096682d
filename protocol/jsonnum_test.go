package protocol

import (
	"encoding/json"
	"testing"
)

func TestNumberFloatInt(t *testing.T) {
	cases := []struct {
		v   any
		f   float64
		fok bool
		n   int
		nok bool
	}{
		{json.Number("3"), 3, true, 3, true},
		{json.Number("2.5"), 2.5, true, 0, false},
		{json.Number("x"), 0, false, 0, false},
		{2.9, 2.9, true, 2, true},
		{7, 7, true, 7, true},
		{"4", 0, false, 0, false},
		{nil, 0, false, 0, false},
	}
	for _, c := range cases {
		if f, ok := NumberFloat(c.v); ok != c.fok || (ok && f != c.f) {
			t.Errorf("NumberFloat(%#v) = %v, %v; want %v, %v", c.v, f, ok, c.f, c.fok)
		}
		if n, ok := NumberInt(c.v); ok != c.nok || (ok && n != c.n) {
			t.Errorf("NumberInt(%#v) = %v, %v; want %v, %v", c.v, n, ok, c.n, c.nok)
		}
	}
}
