package protocol

import "encoding/json"

// NumberFloat reads a decoded JSON number (json.Number, float64 or int) as
// a float64; anything else, or a json.Number that does not parse, is false.
func NumberFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// NumberInt reads a decoded JSON number (json.Number, float64 truncated,
// or int) as an int; anything else, or a json.Number that is not an
// integer, is false.
func NumberInt(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return int(n), err == nil
	case float64:
		return int(x), true
	case int:
		return x, true
	}
	return 0, false
}
