package protocol

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestNumberFloatInt: each input with what NumberFloat and NumberInt
// return, printed "float ok / int ok" ("-" where not ok).
func TestNumberFloatInt(t *testing.T) {
	want := map[any]string{
		json.Number("3"): "3 / 3", json.Number("2.5"): "2.5 / -", json.Number("x"): "- / -",
		2.9: "2.9 / 2", 7: "7 / 7", "4": "- / -", nil: "- / -",
	}
	show := func(v any, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprint(v)
	}
	for v, w := range want {
		f, fok := NumberFloat(v)
		n, nok := NumberInt(v)
		if got := show(f, fok) + " / " + show(n, nok); got != w {
			t.Errorf("%#v: got %s, want %s", v, got, w)
		}
	}
}
