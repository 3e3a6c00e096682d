package protocol

// Stamping (celery ≥ 5.3, spec §1.3): a stamped message carries the
// headers "stamped_headers" (the stamp names) and "stamps" ({name:
// value}). celery 5.3+ clients send `"stamped_headers": null, "stamps":
// {}` on every unstamped message; celery 5.2 sends neither.

import (
	"encoding/json"
	"slices"
	"strconv"
)

// StampedHeaders is the message's "stamped_headers" header as celery's
// Request.stamped_headers reads it: a list of names (a single string is
// one name); nil when absent or null.
func (m *TaskMessage) StampedHeaders() []string {
	if m == nil {
		return nil
	}
	raw, ok := m.Headers["stamped_headers"]
	if !ok || isNull(raw) {
		return nil
	}
	var v any
	if unmarshalNumber(raw, &v) != nil {
		return nil
	}
	return stampNames(v)
}

// StampValues is celery's Request.stamps: {name: stamps[name]} for every
// name in StampedHeaders (a missing value is nil); nil when the message
// names no stamp.
func (m *TaskMessage) StampValues() map[string]any {
	names := m.StampedHeaders()
	if len(names) == 0 {
		return nil
	}
	out := make(map[string]any, len(names))
	for _, n := range names {
		out[n] = m.Stamps[n]
	}
	return out
}

func stampNames(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// StampsFromOptions returns the "stamped_headers" and "stamps" headers of a
// message published from a signature whose options are opts, as celery's
// AMQP.as_task_v2 builds them: the options name the stamps in
// "stamped_headers" and carry each stamp as an option of that name
// (Signature.stamp). Celery does not copy the stamps of the request that
// applies a callback, chain step or errback: a linked signature carries
// its own (stamp_links stamped it on the client). Unstamped options give
// (nil, {}), which a 5.3+ client sends too. Use IsStampOption to drop the
// stamp options from the publish options, as app.send_task does.
func StampsFromOptions(opts map[string]any) (stampedHeaders []string, stamps map[string]any) {
	stamps = map[string]any{}
	names := stampNames(opts["stamped_headers"])
	if len(names) == 0 {
		return nil, stamps
	}
	for _, n := range names {
		stamps[n] = opts[n]
	}
	return names, stamps
}

// IsStampOption reports whether key of a signature's options is
// "stamped_headers" or one of the stamps it names (not a publish option).
func IsStampOption(opts map[string]any, key string) bool {
	if key == "stamped_headers" {
		return true
	}
	return slices.Contains(stampNames(opts["stamped_headers"]), key)
}

// StampMatches reports whether a stamp value matches a revoked value the
// way celery's Request.revoked() compares them: a list stamp matches when
// one of its elements is in maybe_list(revoked), a scalar when it is in
// maybe_list(revoked) or equals revoked. Values compare by Python
// equality of their JSON values (1 == 1.0).
func StampMatches(stamp, revoked any) bool {
	rl := maybeList(revoked)
	if l, ok := stamp.([]any); ok {
		for _, s := range l {
			if containsValue(rl, s) {
				return true
			}
		}
		return false
	}
	return containsValue(rl, stamp) || valueKey(stamp) == valueKey(revoked)
}

// MatchingStamps is set(maybe_list(stamp)) & set(maybe_list(revoked)), in
// the order of stamp (celery's revoke_by_stamped_headers with terminate).
func MatchingStamps(stamp, revoked any) []any {
	rl := maybeList(revoked)
	var out []any
	seen := map[string]bool{}
	for _, s := range maybeList(stamp) {
		k := valueKey(s)
		if !seen[k] && containsValue(rl, s) {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

func maybeList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

func containsValue(l []any, v any) bool {
	k := valueKey(v)
	for _, e := range l {
		if valueKey(e) == k {
			return true
		}
	}
	return false
}

// valueKey is a comparison key with Python's equality of JSON values:
// numbers by value (True == 1 is not modelled), everything else by repr.
func valueKey(v any) string {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return "n" + strconv.FormatFloat(f, 'g', -1, 64)
		}
	case float64:
		return "n" + strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return "n" + strconv.Itoa(x)
	}
	return "r" + PyRepr(v)
}
