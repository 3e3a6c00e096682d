package protocol

import (
	"encoding/json"
	"slices"
	"strconv"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// EncodeResultMeta returns exactly json.Marshal(m) — the compact,
// HTML-escaped bytes the result backend stores — building the common metas
// (STARTED/PROGRESS/SUCCESS with plain JSON results, no traceback, no
// children, no extended keys) by appending instead of through
// MarshalJSON's per-field encoders and json.Marshal's re-compaction.
// Anything else takes json.Marshal.
func EncodeResultMeta(m *ResultMeta) ([]byte, error) {
	if m != nil {
		if b, ok := appendResultMeta(make([]byte, 0, 192), m); ok {
			return b, nil
		}
	}
	return json.Marshal(m)
}

func appendResultMeta(b []byte, m *ResultMeta) ([]byte, bool) {
	if len(m.Extended) > 0 || m.Traceback != nil || len(m.Children) > 0 {
		return b, false
	}
	var ok bool
	b = append(b, `{"status":`...)
	if b, ok = appendSafeString(b, m.Status); !ok {
		return b, false
	}
	b = append(b, `,"result":`...)
	if b, ok = appendValue(b, m.Result, 0); !ok {
		return b, false
	}
	b = append(b, `,"traceback":null,"children":[],"date_done":`...)
	switch {
	case m.DateDone == nil:
		b = append(b, "null"...)
	case m.NaiveDateDone:
		b, ok = appendSafeString(b, pyfmt.FormatISONaive(m.DateDone.UTC()))
	default:
		b, ok = appendSafeString(b, pyfmt.FormatISO(m.DateDone.UTC()))
	}
	if !ok {
		return b, false
	}
	if m.GroupID != "" {
		b = append(b, `,"group_id":`...)
		if b, ok = appendSafeString(b, m.GroupID); !ok {
			return b, false
		}
	}
	if m.ParentID != "" {
		b = append(b, `,"parent_id":`...)
		if b, ok = appendSafeString(b, m.ParentID); !ok {
			return b, false
		}
	}
	b = append(b, `,"task_id":`...)
	if b, ok = appendSafeString(b, m.TaskID); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendSafeString appends s as a JSON string when json.Marshal would copy
// it unchanged: printable ASCII without '"', '\\', '<', '>' and '&'.
func appendSafeString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// safeRaw reports whether json.Marshal copies the valid JSON r unchanged:
// no whitespace to compact, nothing to escape, ASCII only.
func safeRaw(r []byte) bool {
	for _, c := range r {
		switch {
		case c <= ' ' || c >= 0x7f, c == '<', c == '>', c == '&':
			return false
		}
	}
	return json.Valid(r)
}

// appendValue appends the JSON-like value v as MarshalJSON (pyJSONValue:
// floats in Python's repr) followed by json.Marshal would.
func appendValue(b []byte, v any, depth int) ([]byte, bool) {
	if depth > 8 {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case bool:
		return strconv.AppendBool(b, x), true
	case string:
		return appendSafeString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case float64:
		return pyfmt.AppendJSONFloat(b, x), true
	case json.RawMessage:
		if !safeRaw(x) {
			return b, false
		}
		return append(b, x...), true
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		var ok bool
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendSafeString(b, k); !ok {
				return b, false
			}
			b = append(b, ':')
			if b, ok = appendValue(b, x[k], depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case []any:
		b = append(b, '[')
		var ok bool
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendValue(b, e, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	}
	return b, false
}
