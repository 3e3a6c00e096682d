package protocol

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxNestingDepth bounds the nesting of arrays and objects in an envelope
// and in a task body. It is the depth Redis's cjson decodes (the broker's
// record script cannot record a deeper envelope) and about what Python's
// json module reaches before RecursionError (sys.getrecursionlimit() is
// 1000), so no Python client can send a deeper message.
const MaxNestingDepth = 1000

// ErrTooDeep: a message nests arrays/objects deeper than MaxNestingDepth.
var ErrTooDeep = errors.New("message nested too deeply")

// NestingError reports where a message first exceeds the nesting limit.
type NestingError struct {
	Part   string // "envelope" or "body"
	Limit  int
	Offset int // byte offset of the bracket that went one level too deep
}

func (e *NestingError) Error() string {
	return fmt.Sprintf("message nested too deeply (limit %d): %s, byte %d", e.Limit, e.Part, e.Offset)
}

// Unwrap makes errors.Is(err, ErrTooDeep) true.
func (e *NestingError) Unwrap() error { return ErrTooDeep }

// checkNesting returns a *NestingError when b (JSON or not) opens more
// than limit arrays/objects without closing them. Strings are skipped, so
// brackets inside them do not count. It never recurses.
func checkNesting(part string, b []byte, limit int) error {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			j, ok := skipString(b, i)
			if !ok {
				return nil // unterminated string: json.Valid will say so
			}
			i = j - 1
		case '{', '[':
			depth++
			if depth > limit {
				return &NestingError{Part: part, Limit: limit, Offset: i}
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// InvalidUTF8Error reports the first byte of a message body that is not
// UTF-8 (Python decodes a JSON body with .decode('utf-8') and refuses it).
type InvalidUTF8Error struct {
	Offset int
	Byte   byte
}

func (e *InvalidUTF8Error) Error() string {
	return fmt.Sprintf("invalid UTF-8 at byte %d (0x%02x)", e.Offset, e.Byte)
}

// checkUTF8 returns an *InvalidUTF8Error at the first invalid sequence.
func checkUTF8(b []byte) error {
	if utf8.Valid(b) {
		return nil
	}
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return &InvalidUTF8Error{Offset: i, Byte: b[i]}
		}
		i += n
	}
	return nil
}

// skipShallow returns the index after the JSON value starting at b[i]
// without validating its contents beyond structure: strings must end,
// brackets must match (tracked on an explicit stack, so any depth is
// skipped without recursion). ok is false on anything else.
func skipShallow(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
	case '}', ']', ',', ':':
		return 0, false
	default:
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ':' && b[j] != '"' {
			j++
		}
		return j, j > i
	}
	var stack []byte
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			j, ok := skipString(b, i)
			if !ok {
				return 0, false
			}
			i = j - 1
		case '{', '[':
			stack = append(stack, c)
		case '}', ']':
			open := byte('{')
			if c == ']' {
				open = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return 0, false
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, true
			}
		}
	}
	return 0, false
}

// shallowMembers calls fn with the decoded key and raw value of every
// member of the JSON object b, at any nesting depth of the values and
// without validating them (see skipShallow). It reports false when b is
// not a structurally complete object (trailing non-space bytes included).
func shallowMembers(b []byte, fn func(k string, v []byte)) bool {
	type member struct {
		k string
		v []byte
	}
	var members []member
	end, ok := scanMembers(b, skipShallow, func(k string, v []byte) { members = append(members, member{k, v}) })
	if !ok || skipSpace(b, end) != len(b) {
		return false
	}
	for _, m := range members {
		fn(m.k, m.v)
	}
	return true
}

// peekIDTask reads the string members "id" and "task" of object b
// (shallowly; "" when missing or not strings; the last duplicate wins).
func peekIDTask(b []byte) (id, task string, ok bool) {
	ok = shallowMembers(b, func(k string, v []byte) {
		if len(v) == 0 || v[0] != '"' {
			return
		}
		switch k {
		case "id":
			id, _ = decodeString(v)
		case "task":
			task, _ = decodeString(v)
		}
	})
	return id, task, ok
}

// PeekRawTaskID reads headers.id and headers.task of a raw envelope that
// failed full decoding (too deep, a body that is not a string, ...), so
// that the worker can still store a FAILURE for the id. Values other than
// the headers object and its two strings are skipped without recursion
// and without a depth limit; "" when the bytes are not a structurally
// complete JSON object or the members are not strings.
func PeekRawTaskID(raw []byte) (id, task string) {
	var headers []byte
	if !shallowMembers(raw, func(k string, v []byte) {
		if k == "headers" {
			headers = v
		}
	}) || headers == nil {
		return "", ""
	}
	id, task, _ = peekIDTask(headers)
	return id, task
}
