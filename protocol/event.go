package protocol

import (
	"errors"
	"os"
	"sort"
	"time"
)

// ErrBadEvent: the event fields lack a type.
var ErrBadEvent = errors.New("protocol: event needs a string \"type\" field")

// EncodeEvent returns the envelope of one event (spec §5.1): headers
// {"hostname"}, delivery_mode 1, delivery_info {exchange celeryev,
// routing_key = type with "-" -> "."}. fields must include "type"; missing
// "hostname", "timestamp" (now), "utcoffset" (of the local zone now) and
// "pid" (this process) are filled in; "clock" is the caller's job. Body key
// order follows Python: hostname, utcoffset, pid, clock, the other fields
// (sorted), timestamp, type. Floats keep ".0" (freq 2.0).
func EncodeEvent(hostname string, fields map[string]any) ([]byte, error) {
	typ, _ := fields["type"].(string)
	if typ == "" {
		return nil, ErrBadEvent
	}
	now := time.Now()
	var o object
	get := func(k string, def func() any) {
		if v, ok := fields[k]; ok {
			o.add(k, pyJSONValue(v))
		} else if def != nil {
			o.add(k, def())
		}
	}
	get("hostname", func() any { return hostname })
	get("utcoffset", func() any { return UTCOffsetHours(now) })
	get("pid", func() any { return os.Getpid() })
	get("clock", nil)
	var rest []string
	for k := range fields {
		switch k {
		case "hostname", "utcoffset", "pid", "clock", "timestamp", "type":
		default:
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		o.add(k, pyJSONValue(fields[k]))
	}
	get("timestamp", func() any { return Float(float64(now.UnixMicro()) / 1e6) })
	o.add("type", typ)
	body, err := o.bytes()
	if err != nil {
		return nil, err
	}
	var h object
	h.add("hostname", hostname)
	hb, _ := h.bytes()
	return encodeSimple(body, hb, Properties{
		DeliveryMode: 1,
		DeliveryInfo: DeliveryInfo{Exchange: EventExchange, RoutingKey: EventRoutingKey(typ)},
	})
}

// UTCOffsetHours is Python's time.timezone // 3600 (time.altzone during
// DST) for t's zone: hours WEST of UTC, floor-divided. UTC -> 0,
// UTC+2 -> -2, UTC+5:30 -> -6, UTC-3:30 -> 3.
func UTCOffsetHours(t time.Time) int {
	_, east := t.Zone()
	west := -east
	h := west / 3600
	if west%3600 != 0 && west < 0 {
		h--
	}
	return h
}

// DecodeEvents decodes an event envelope body: a single event object or a
// batch array (routing key task.multi).
func DecodeEvents(env *Envelope) ([]map[string]any, error) {
	data, err := decodePayload(env)
	if err != nil {
		return nil, err
	}
	var one map[string]any
	if unmarshalNumber(data, &one) == nil && one != nil {
		return []map[string]any{one}, nil
	}
	var many []map[string]any
	if err := unmarshalNumber(data, &many); err != nil {
		return nil, errors.New("protocol: event body is neither an object nor a list of objects")
	}
	return many, nil
}
