package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Hot-path JSON helpers for the worker's per-message decoding and result
// encoding. They never change a result: each one either handles the common
// simple case exactly as encoding/json would, or reports that it did not
// (ok == false) and the caller falls back to encoding/json.
//
// The scanners (eachMember, eachElement, skipValue) assume their input is
// valid JSON (checked once with json.Valid by the caller); on anything
// unexpected they report false, never panic.

// isSpace reports JSON whitespace.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				j, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	default:
		for ; i < len(b); i++ {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i, true
			}
		}
		return i, true
	}
}

// simpleString returns the contents of the JSON string literal s when it
// has no escapes and is valid UTF-8 (then encoding/json decodes it to
// exactly these bytes).
func simpleString(s []byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	body := s[1 : len(s)-1]
	for _, c := range body {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if k, ok := interned[string(body)]; ok { // no allocation for the lookup
		return k, true
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// interned are the keys and common values of Celery's envelopes, headers
// and properties: decoding them returns these strings instead of
// allocating new ones (a task message has ~40 of them).
var interned = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		// envelope
		"body", "content-encoding", "content-type", "headers", "properties",
		"utf-8", "binary", "application/json", "application/x-python-serialize",
		"application/x-yaml", "application/x-msgpack",
		// task headers (protocol 2)
		"lang", "py", "go", "task", "id", "shadow", "eta", "expires", "group",
		"group_index", "retries", "timelimit", "root_id", "parent_id", "argsrepr",
		"kwargsrepr", "origin", "ignore_result", "replaced_task_nesting",
		"stamped_headers", "stamps",
		// properties
		"correlation_id", "reply_to", "delivery_mode", "delivery_info", "priority",
		"body_encoding", "base64", "delivery_tag", "exchange", "routing_key",
		"celery", "redelivered",
		// embed
		"callbacks", "errbacks", "chain", "chord",
	} {
		m[k] = k
	}
	return m
}()

// decodeString decodes a JSON string literal (fast path, then
// encoding/json); ok is false when v is not a string.
func decodeString(v []byte) (string, bool) {
	if s, ok := simpleString(v); ok {
		return s, true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// eachMember calls fn with the decoded key and the raw value of every
// member of the JSON object b (valid JSON assumed), in order. It reports
// false when b is not an object or a key needs encoding/json and that
// fails.
func eachMember(b []byte, fn func(k string, v []byte)) bool {
	_, ok := scanMembers(b, skipValue, fn)
	return ok
}

// scanMembers calls fn with the decoded key and the raw value of every
// member of the JSON object that starts b (after spaces), each value's end
// found by skip, in order, and returns the index just after the closing
// brace. ok is false when b does not start with a complete object.
func scanMembers(b []byte, skip func([]byte, int) (int, bool), fn func(k string, v []byte)) (end int, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for i < len(b) {
		if b[i] != '"' {
			return 0, false
		}
		j, ok := skipString(b, i)
		if !ok {
			return 0, false
		}
		k, ok := decodeString(b[i:j])
		if !ok {
			return 0, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		if j, ok = skip(b, i); !ok {
			return 0, false
		}
		fn(k, b[i:j:j])
		i = skipSpace(b, j)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			return i + 1, true
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipSpace(b, i+1)
	}
	return 0, false
}

// elements returns the raw elements of the JSON array b (valid JSON
// assumed); ok is false when b is not an array.
func elements(b []byte) (out [][]byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return [][]byte{}, true
	}
	for i < len(b) {
		j, ok := skipValue(b, i)
		if !ok {
			return nil, false
		}
		out = append(out, b[i:j:j])
		i = skipSpace(b, j)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ']' {
			return out, true
		}
		if b[i] != ',' {
			return nil, false
		}
		i = skipSpace(b, i+1)
	}
	return nil, false
}

// firstByte is the first non-space byte of b (0 if none).
func firstByte(b []byte) byte {
	if i := skipSpace(b, 0); i < len(b) {
		return b[i]
	}
	return 0
}

// simpleInt parses a plain JSON integer literal that fits an int.
func simpleInt(v []byte) (int, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	for k, c := range v {
		if (c < '0' || c > '9') && !(k == 0 && c == '-' && len(v) > 1) {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// appendSimpleString appends s as a JSON string when no byte needs
// escaping in encoding/json (with HTML escaping off): printable ASCII
// without '"' and '\\'. ok is false otherwise (nothing appended).
func appendSimpleString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return dst, false
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// marshalFast encodes the simple values marshalNoEscape sees most (nil,
// strings, bools, ints, nil string pointers) exactly as encoding/json
// does; ok is false for anything else.
func marshalFast(v any) ([]byte, bool) {
	switch x := v.(type) {
	case nil:
		return []byte("null"), true
	case string:
		return appendSimpleString(make([]byte, 0, len(x)+2), x)
	case *string:
		if x == nil {
			return []byte("null"), true
		}
		return appendSimpleString(make([]byte, 0, len(*x)+2), *x)
	case bool:
		if x {
			return []byte("true"), true
		}
		return []byte("false"), true
	case int:
		return strconv.AppendInt(nil, int64(x), 10), true
	case int64:
		return strconv.AppendInt(nil, x, 10), true
	}
	return nil, false
}
