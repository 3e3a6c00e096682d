package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// DefaultReprMax is celery's saferepr limit for argsrepr, kwargsrepr and
// event result strings.
const DefaultReprMax = 1024

// PyRepr renders a JSON-like Go value the way Python's repr() renders the
// value json.loads would produce (spec §0.2): strings single-quoted with
// Python escaping (double quotes when the string contains ' and no "),
// nil -> None, bools -> True/False, json.Number as a Python int or float,
// float64 like Python's float repr, slices -> [a, b], maps -> {'k': v}.
// Go maps have no order, so map keys are sorted; use PyReprJSON to keep the
// order of a JSON document. *ExceptionInfo renders as PyReprException.
func PyRepr(v any) string {
	var b strings.Builder
	writeRepr(&b, v, 0)
	return b.String()
}

// PyReprArgs renders positional arguments as a Python tuple:
// "()", "(1,)", "(1, 2)".
func PyReprArgs(args []any) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, a := range args {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(&b, a, 1)
	}
	if len(args) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// PyReprException renders an exception like Python's BaseException repr:
// "ValueError('boom')", "KeyError()", "TimeLimitExceeded(300.0)",
// "ValueError('a', 1)". Nested class names keep only the last part.
func PyReprException(e *ExceptionInfo) string {
	if e == nil {
		return "None"
	}
	name := e.Type
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('(')
	for i, a := range e.Message {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(&b, a, 1)
	}
	b.WriteByte(')')
	return b.String()
}

// PyReprJSON renders a JSON document as Python would repr its json.loads
// value, keeping object key order.
func PyReprJSON(doc []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var b strings.Builder
	if err := reprTokens(&b, dec); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("protocol: trailing data after JSON value")
	}
	return b.String(), nil
}

func reprTokens(b *strings.Builder, dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			b.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				if err := reprTokens(b, dec); err != nil {
					return err
				}
			}
			b.WriteByte(']')
		case '{':
			b.WriteByte('{')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				k, err := dec.Token()
				if err != nil {
					return err
				}
				ks, _ := k.(string)
				writeStr(b, ks)
				b.WriteString(": ")
				if err := reprTokens(b, dec); err != nil {
					return err
				}
			}
			b.WriteByte('}')
		}
		_, err := dec.Token() // closing delimiter
		return err
	default:
		writeRepr(b, t, 0)
	}
	return nil
}

const maxReprDepth = 64

func writeRepr(b *strings.Builder, v any, depth int) {
	if depth > maxReprDepth {
		b.WriteString("...")
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		writeStr(b, x)
	case json.Number:
		b.WriteString(pyNumber(string(x)))
	case json.RawMessage:
		if s, err := PyReprJSON(x); err == nil {
			b.WriteString(s)
		} else {
			writeStr(b, string(x))
		}
	case float64:
		b.WriteString(pyfmt.FormatFloat(x))
	case float32:
		b.WriteString(pyfmt.FormatFloat(float64(x)))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case int32:
		b.WriteString(strconv.FormatInt(int64(x), 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case uint:
		b.WriteString(strconv.FormatUint(uint64(x), 10))
	case *ExceptionInfo:
		b.WriteString(PyReprException(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e, depth+1)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeStr(b, k)
			b.WriteString(": ")
			writeRepr(b, x[k], depth+1)
		}
		b.WriteByte('}')
	default:
		writeReflect(b, v, depth)
	}
}

// writeReflect handles other slices, maps and pointers; anything else is
// rendered as the repr of its fmt.Sprint text.
func writeReflect(b *strings.Builder, v any, depth int) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			b.WriteString("None")
			return
		}
		writeRepr(b, rv.Elem().Interface(), depth+1)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i := 0; i < rv.Len(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, rv.Index(i).Interface(), depth+1)
		}
		b.WriteByte(']')
	case reflect.Map:
		type kv struct {
			k string
			v any
		}
		var kvs []kv
		for it := rv.MapRange(); it.Next(); {
			kvs = append(kvs, kv{fmt.Sprint(it.Key().Interface()), it.Value().Interface()})
		}
		sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
		b.WriteByte('{')
		for i, e := range kvs {
			if i > 0 {
				b.WriteString(", ")
			}
			writeStr(b, e.k)
			b.WriteString(": ")
			writeRepr(b, e.v, depth+1)
		}
		b.WriteByte('}')
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(rv.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b.WriteString(strconv.FormatUint(rv.Uint(), 10))
	case reflect.String:
		writeStr(b, rv.String())
	case reflect.Bool:
		writeRepr(b, rv.Bool(), depth)
	case reflect.Float32, reflect.Float64:
		b.WriteString(pyfmt.FormatFloat(rv.Float()))
	default:
		writeStr(b, fmt.Sprint(v))
	}
}

// writeStr writes the Python 3 repr of a str.
func writeStr(b *strings.Builder, s string) {
	b.WriteString(pyfmt.ReprString(s))
}

// pyNumber renders a JSON number as Python renders the int or float that
// json.loads makes of it.
func pyNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return s
	}
	return pyfmt.FormatFloat(f)
}
