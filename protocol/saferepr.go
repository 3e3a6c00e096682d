package protocol

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"unicode/utf8"
)

// SafeRepr renders v the way celery.utils.saferepr.saferepr(v, max) does
// (celery 5.2–5.6; argsrepr, kwargsrepr and event results use it). It is
// not Python's repr: strings are always single-quoted with only "'"
// escaped (newlines and backslashes are written raw), containers nested
// deeper than 3 levels print as "[...]", and once max characters have been
// written the rest is replaced by ", ..." followed by the pending closing
// brackets; a string longer than the space left is cut at the last space
// and suffixed with "...". max <= 0 means DefaultReprMax. Go maps are
// rendered with sorted keys (Python keeps insertion order).
func SafeRepr(v any, max int) string {
	if max <= 0 {
		max = DefaultReprMax
	}
	s := safeReprState{rem: max, limited: true}
	s.value(v)
	return s.b.String()
}

func safeReprUnlimited(v any) string {
	var s safeReprState
	s.value(v)
	return s.b.String()
}

// SafeReprArgs is SafeRepr of args as a Python tuple ("(2, 2)", "(1,)"),
// which is what celery writes as argsrepr for apply_async((2, 2)).
func SafeReprArgs(args []any, max int) string {
	if max <= 0 {
		max = DefaultReprMax
	}
	s := safeReprState{rem: max, limited: true}
	s.container(reprTuple(args))
	return s.b.String()
}

type reprTuple []any

const safeReprMaxLevels = 3

type safeReprState struct {
	b       strings.Builder
	rem     int
	limited bool
	level   int
	stopped bool
}

// emit writes one token, first checking the length budget like
// celery's _saferepr loop. It reports false once output has stopped.
func (s *safeReprState) emit(tok string) bool {
	if s.stopped {
		return false
	}
	if s.limited && s.rem <= 0 {
		s.b.WriteString(", ...")
		s.stopped = true
		return false
	}
	s.b.WriteString(tok)
	if s.limited {
		s.rem -= utf8.RuneCountInString(tok)
	}
	return true
}

// text truncates a scalar token like celery.utils.text.truncate with the
// remaining budget.
func (s *safeReprState) text(tok string) string {
	if !s.limited {
		return tok
	}
	return celeryTruncate(tok, s.rem)
}

func celeryTruncate(tok string, maxlen int) string {
	if maxlen <= 0 || utf8.RuneCountInString(tok) < maxlen {
		return tok
	}
	cut := tok
	n := 0
	for i := range tok {
		if n == maxlen {
			cut = tok[:i]
			break
		}
		n++
	}
	if i := strings.LastIndexByte(cut, ' '); i >= 0 {
		cut = cut[:i]
	}
	return cut + "..."
}

func (s *safeReprState) quoted(str string) string {
	return "'" + strings.ReplaceAll(s.text(str), "'", `\'`) + "'"
}

func (s *safeReprState) value(v any) {
	if s.stopped {
		return
	}
	switch x := v.(type) {
	case nil:
		s.emit(s.text("None"))
	case string:
		s.emit(s.quoted(x))
	case bool, json.Number, float64, float32, int, int64, int32, uint, uint64:
		s.emit(s.text(PyRepr(x)))
	case []any, map[string]any, reprTuple:
		s.container(x)
	case *ExceptionInfo:
		s.emit(s.text(PyReprException(x)))
	case json.RawMessage:
		var d any
		if unmarshalNumber(x, &d) == nil {
			s.value(d)
		} else {
			s.emit(s.quoted(string(x)))
		}
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			l := make([]any, rv.Len())
			for i := range l {
				l[i] = rv.Index(i).Interface()
			}
			s.container(l)
		case reflect.Map:
			m := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				m[fmt.Sprint(it.Key().Interface())] = it.Value().Interface()
			}
			s.container(m)
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				s.value(nil)
			} else {
				s.value(rv.Elem().Interface())
			}
		case reflect.String:
			s.emit(s.quoted(rv.String()))
		default:
			s.emit(s.text(PyRepr(v)))
		}
	}
}

func (s *safeReprState) container(v any) {
	var open, close string
	var n int
	switch x := v.(type) {
	case []any:
		open, close, n = "[", "]", len(x)
	case reprTuple:
		open, close, n = "(", ")", len(x)
		if n == 1 {
			close = ",)"
		}
	case map[string]any:
		open, close, n = "{", "}", len(x)
	}
	if s.level >= safeReprMaxLevels {
		s.emit(s.text(open + "..." + close))
		return
	}
	// From here on the closer is pending: celery emits it even when the
	// budget runs out at the opening bracket.
	s.level++
	s.emit(open)
	switch x := v.(type) {
	case []any:
		s.items(x)
	case reprTuple:
		s.items(x)
	case map[string]any:
		keys := make([]string, 0, n)
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if s.stopped {
				break
			}
			// the key is rendered by a nested saferepr with the budget left
			key := "'" + strings.ReplaceAll(s.text(k), "'", `\'`) + "'"
			s.emit(key)
			s.emit(": ")
			s.value(x[k])
			if i < n-1 {
				s.emit(", ")
			}
		}
	}
	s.level--
	if s.stopped {
		s.b.WriteString(close) // dangling closer
		return
	}
	if !s.emit(close) {
		return // the budget ran out exactly here: celery drops this closer
	}
}

func (s *safeReprState) items(l []any) {
	for i, e := range l {
		if s.stopped {
			return
		}
		s.value(e)
		if i < len(l)-1 {
			s.emit(", ")
		}
	}
}
