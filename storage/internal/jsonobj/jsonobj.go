// Package jsonobj is the JSON object of a data_files row's metadata with
// its key order kept (the column is `json`, not jsonb: PostgreSQL keeps
// the text and Python's json.loads keeps the order; we do too), rendered
// the way Python's json.dumps writes it. It is shared by storage (File's
// accessors) and storage/postgres (the updates).
package jsonobj

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// Member is one key/value pair of a JSON object, value kept as raw JSON.
type Member struct {
	Key   string
	Value json.RawMessage
}

// Object is a JSON object that keeps its key order.
type Object []Member

// Parse parses raw JSON text into an ordered object. Anything that is
// not an object (SQL NULL, JSON null, an array...) yields an empty object,
// as the Python code's `df.metadata_ or {}` does.
func Parse(raw []byte) (Object, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return Object{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var o Object
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
		o = o.Set(key, v)
	}
	return o, nil
}

// Get returns the value of key (the last one when duplicated, as Python).
func (o Object) Get(key string) (json.RawMessage, bool) {
	for i := len(o) - 1; i >= 0; i-- {
		if o[i].Key == key {
			return o[i].Value, true
		}
	}
	return nil, false
}

// Set replaces the value of key in place (keeping its position, as a
// Python dict assignment does) or appends it; later duplicates are dropped.
func (o Object) Set(key string, v json.RawMessage) Object {
	found := false
	out := o[:0]
	for _, m := range o {
		if m.Key == key {
			if found {
				continue
			}
			found = true
			m.Value = v
		}
		out = append(out, m)
	}
	if !found {
		out = append(out, Member{key, v})
	}
	return out
}

// SetValue marshals v (once; a json.RawMessage is checked, not
// re-encoded) and sets it.
func (o Object) SetValue(key string, v any) (Object, error) {
	raw, err := marshalValue(v)
	if err != nil {
		return nil, fmt.Errorf("metadata %q: %w", key, err)
	}
	return o.Set(key, raw), nil
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

// Int64 reads key as an integral JSON number.
func (o Object) Int64(key string) (int64, bool) {
	raw, ok := o.Get(key)
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

// Encode renders the object the way Python's json.dumps does by default
// (what SQLAlchemy's JSON type writes): ", " and ": " separators and
// non-ASCII characters escaped as \uXXXX.
func (o Object) Encode() []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			buf.WriteString(", ")
		}
		k, _ := json.Marshal(m.Key)
		buf.Write(k)
		buf.WriteString(": ")
		buf.Write(m.Value)
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
