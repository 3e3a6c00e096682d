package postgres

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// member is one key/value pair of a JSON object, value kept as raw JSON.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object that keeps its key order (the column is `json`,
// not jsonb, so PostgreSQL keeps the text and Python's json.loads keeps
// the order; we do too).
type object []member

// parseObject parses raw JSON text into an ordered object. Anything that is
// not an object (SQL NULL, JSON null, an array...) yields an empty object,
// as the Python code's `df.metadata_ or {}` does.
func parseObject(raw []byte) (object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return object{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		o = o.set(key, v)
	}
	return o, nil
}

// get returns the value of key (the last one when duplicated, as Python).
func (o object) get(key string) (json.RawMessage, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].key == key {
			return o[i].value, true
		}
	}
	return nil, false
}

// set replaces the value of key in place (keeping its position, as a
// Python dict assignment does) or appends it; later duplicates are dropped.
func (o object) set(key string, v json.RawMessage) object {
	found := false
	out := o[:0]
	for _, m := range o {
		if m.key == key {
			if found {
				continue
			}
			found = true
			m.value = v
		}
		out = append(out, m)
	}
	if !found {
		out = append(out, member{key, v})
	}
	return out
}

// setValue marshals v and sets it.
func (o object) setValue(key string, v any) (object, error) {
	raw, err := marshalValue(v)
	if err != nil {
		return nil, fmt.Errorf("metadata %q: %w", key, err)
	}
	return o.set(key, raw), nil
}

func marshalValue(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("invalid JSON %q", raw)
		}
		return raw, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// merge applies a patch. Keys are applied in patchOrder first (the order
// the Python upload path assigns them), then the rest sorted, so the
// resulting text is deterministic.
func (o object) merge(patch map[string]any) (object, error) {
	keys := make([]string, 0, len(patch))
	for k := range patch {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		for i, p := range patchOrder {
			if p == k {
				return i
			}
		}
		return len(patchOrder)
	}
	sort.Slice(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		return keys[i] < keys[j]
	})
	var err error
	for _, k := range keys {
		if o, err = o.setValue(k, patch[k]); err != nil {
			return nil, err
		}
	}
	return o, nil
}

var patchOrder = []string{"processed_file_id", "processing_info", "omics_type"}

// int64Value reads key as an integral JSON number.
func (o object) int64Value(key string) (int64, bool) {
	raw, ok := o.get(key)
	if !ok {
		return 0, false
	}
	s := string(bytes.TrimSpace(raw))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == float64(int64(f)) {
		return int64(f), true
	}
	return 0, false
}

// encode renders the object the way Python's json.dumps does by default
// (what SQLAlchemy's JSON type writes): ", " and ": " separators and
// non-ASCII characters escaped as \uXXXX.
func (o object) encode() []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteString(", ")
		}
		k, _ := json.Marshal(m.key)
		buf.Write(k)
		buf.WriteString(": ")
		buf.Write(m.value)
	}
	buf.WriteByte('}')
	return pythonJSON(buf.Bytes())
}

// pythonJSON re-renders valid JSON text in json.dumps' default style. It
// only changes whitespace and string escapes, never numbers or order.
func pythonJSON(src []byte) []byte {
	var compact bytes.Buffer
	if err := json.Compact(&compact, src); err != nil {
		return src
	}
	in := compact.Bytes()
	out := make([]byte, 0, len(in)+len(in)/8)
	inString := false
	for i := 0; i < len(in); i++ {
		c := in[i]
		if !inString {
			out = append(out, c)
			switch c {
			case '"':
				inString = true
			case ',', ':':
				out = append(out, ' ')
			}
			continue
		}
		switch {
		case c == '"':
			inString = false
			out = append(out, c)
		case c == '\\':
			// Keep escapes, but undo Go's HTML-safe \u003c \u003e \u0026
			// (Python leaves <, > and & as they are).
			if i+5 < len(in) && in[i+1] == 'u' {
				switch string(in[i+2 : i+6]) {
				case "003c", "003C":
					out = append(out, '<')
					i += 5
					continue
				case "003e", "003E":
					out = append(out, '>')
					i += 5
					continue
				case "0026":
					out = append(out, '&')
					i += 5
					continue
				}
			}
			out = append(out, c, in[i+1])
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
		default:
			r, size := utf8.DecodeRune(in[i:])
			i += size - 1
			out = pyfmt.AppendJSONRune(out, r)
		}
	}
	return out
}
