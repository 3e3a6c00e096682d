package protocol

import (
	"encoding/json"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// Float is a float64 that encodes like Python's json.dumps: integral values
// keep ".0" (2.0, not 2), so Python peers decode a float, not an int. This
// matters for event "freq" and for mingle's revoked timestamps (spec §4.7).
// Non-finite values encode as null.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	return pyfmt.AppendJSONFloat(nil, float64(f)), nil
}

// pyJSONValue returns v with every float64/float32 inside maps and slices
// (of the JSON-like types map[string]any and []any) replaced by Float.
func pyJSONValue(v any) any {
	switch x := v.(type) {
	case float64:
		return Float(x)
	case float32:
		return Float(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = pyJSONValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = pyJSONValue(e)
		}
		return out
	case []float64:
		out := make([]Float, len(x))
		for i, e := range x {
			out[i] = Float(e)
		}
		return out
	default:
		return v
	}
}

// marshalPy marshals v (after pyJSONValue) without HTML escaping.
func marshalPy(v any) (json.RawMessage, error) {
	return marshalNoEscape(pyJSONValue(v))
}
