package control

// revoke_by_stamped_headers (celery ≥ 5.3; worker/control.py of celery
// 5.5.2): replies and argument handling as a Python 5.5 worker.

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

// stampArgs reads the "headers" argument: the CLI's list of "name=value"
// strings (celery keeps the text between the first and second "=") or a
// mapping {name: value or [values]} (app.control.revoke_by_stamped_headers).
// A mapping arrives as a JSON object whose key order this server does not
// keep: names are then sorted.
func stampArgs(v any) ([]worker.Stamp, error) {
	switch x := v.(type) {
	case []any:
		var out []worker.Stamp
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, &pyExc{"AttributeError", "'" + pyTypeName(e) + "' object has no attribute 'split'"}
			}
			parts := strings.Split(s, "=")
			if len(parts) < 2 {
				return nil, &pyExc{"IndexError", "list index out of range"}
			}
			// a dict comprehension: a repeated name keeps its first
			// position and its last value
			if i := slices.IndexFunc(out, func(st worker.Stamp) bool { return st.Name == parts[0] }); i >= 0 {
				out[i].Value = parts[1]
				continue
			}
			out = append(out, worker.Stamp{Name: parts[0], Value: parts[1]})
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := make([]worker.Stamp, 0, len(keys))
		for _, k := range keys {
			out = append(out, worker.Stamp{Name: k, Value: x[k]})
		}
		return out, nil
	}
	return nil, &pyExc{"AttributeError", "'" + pyTypeName(v) + "' object has no attribute 'items'"}
}

func pyTypeName(v any) string {
	if n, ok := v.(json.Number); ok && !strings.ContainsAny(n.String(), ".eE") {
		return "int"
	}
	t := pyType(v) // "<class 'str'>"
	return strings.TrimSuffix(strings.TrimPrefix(t, "<class '"), "'>")
}

// reprStamps renders stamps as Python's repr of the headers dict.
func reprStamps(stamps []worker.Stamp) string {
	var b strings.Builder
	b.WriteByte('{')
	writeStampItems(&b, stamps, func(b *strings.Builder, v any) {
		b.WriteString(protocol.PyRepr(v))
	})
	b.WriteByte('}')
	return b.String()
}

// reprStampSets renders celery's terminated_scheme_to_stamps_mapping:
// defaultdict(<class 'set'>, {'name': {'v1', 'v2'}}) (set elements in the
// order found; Python's own set order is a hash order).
func reprStampSets(stamps []worker.Stamp) string {
	var b strings.Builder
	b.WriteString("defaultdict(<class 'set'>, {")
	writeStampItems(&b, stamps, func(b *strings.Builder, v any) {
		vals, _ := v.([]any)
		b.WriteByte('{')
		for k, x := range vals {
			if k > 0 {
				b.WriteString(", ")
			}
			b.WriteString(protocol.PyRepr(x))
		}
		b.WriteByte('}')
	})
	b.WriteString("})")
	return b.String()
}

// writeStampItems writes the dict items 'name': value of stamps, comma
// separated, the value written by value.
func writeStampItems(b *strings.Builder, stamps []worker.Stamp, value func(*strings.Builder, any)) {
	for i, s := range stamps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(protocol.PyRepr(s.Name))
		b.WriteString(": ")
		value(b, s.Value)
	}
}

func hRevokeByStampedHeaders(_ context.Context, s *Server, args map[string]any) (any, error) {
	n := 15 // signal or TERM_SIGNAME
	if pyfmt.Truthy(args["signal"]) {
		var err error
		if n, err = signum(args["signal"]); err != nil {
			return nil, err
		}
	}
	stamps, err := stampArgs(args["headers"])
	if err != nil {
		return nil, err
	}
	terminate := pyfmt.Truthy(args["terminate"])
	terminated := s.w.RevokeStamps(stamps, terminate, n)
	s.log.Info("Tasks flagged as revoked by stamped headers: "+reprStamps(stamps), "terminate", terminate)
	if !terminate {
		return ok("headers " + reprStamps(stamps) + " flagged as revoked, but not terminated"), nil
	}
	if len(terminated) == 0 {
		return ok("headers " + reprStamps(stamps) + " were not terminated"), nil
	}
	return ok("headers " + reprStampSets(terminated) + " revoked"), nil
}
