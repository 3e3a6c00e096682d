package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// refDecodeEnvelope is the straightforward decoder the fast in-place walk
// replaced (maps of raw values, re-parsed member by member). The fuzz test
// below checks that both agree on every input without duplicate keys
// (with duplicates both keep the last value; only which error is reported
// may differ).
func refDecodeEnvelope(raw []byte) (*Envelope, error) {
	if firstByte(raw) != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrBadEnvelope)
	}
	if err := checkNesting("envelope", raw, MaxNestingDepth); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return nil, fmt.Errorf("%w: not valid JSON%s", ErrBadEnvelope, syntaxAt(raw))
	}
	e := &Envelope{}
	for k, v := range top {
		switch k {
		case "body":
			if isNull(v) {
				continue
			}
			if err := json.Unmarshal(v, &e.Body); err != nil {
				return nil, fmt.Errorf("%w: body is not a string", ErrBadEnvelope)
			}
		case "content-encoding":
			e.ContentEncoding = refLooseString(v)
		case "content-type":
			e.ContentType = refLooseString(v)
		case "headers":
			if isNull(v) {
				continue
			}
			if json.Unmarshal(v, &e.Headers) != nil || e.Headers == nil {
				e.Headers = nil
				e.BadHeaders = append(json.RawMessage(nil), v...)
			}
		case "properties":
			if isNull(v) {
				continue
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v, &m); err != nil {
				return nil, fmt.Errorf("%w: properties is not an object", ErrBadEnvelope)
			}
			p := &e.Properties
			for k, v := range m {
				switch k {
				case "correlation_id":
					p.CorrelationID = refLooseString(v)
				case "reply_to":
					p.ReplyTo = refLooseString(v)
				case "delivery_mode":
					p.DeliveryMode = looseInt(v)
				case "delivery_info":
					if isNull(v) {
						continue
					}
					var dm map[string]json.RawMessage
					if err := json.Unmarshal(v, &dm); err != nil {
						return nil, fmt.Errorf("%w: delivery_info is not an object", ErrBadEnvelope)
					}
					d := &p.DeliveryInfo
					for k, v := range dm {
						switch k {
						case "exchange":
							d.Exchange = refLooseString(v)
						case "routing_key":
							d.RoutingKey = refLooseString(v)
						case "redelivered":
							var b bool
							if json.Unmarshal(v, &b) == nil {
								d.Redelivered = b
							}
						default:
							setExtra(&d.Extra, k, v)
						}
					}
				case "priority":
					p.Priority = looseInt(v)
				case "body_encoding":
					p.BodyEncoding = refLooseString(v)
				case "delivery_tag":
					p.DeliveryTag = refLooseString(v)
				default:
					setExtra(&p.Extra, k, v)
				}
			}
		default:
			setExtra(&e.Extra, k, v)
		}
	}
	return e, nil
}

func refLooseString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// hasDuplicateKeys reports whether any object in raw repeats a key.
func hasDuplicateKeys(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // next string token is a key
	}
	var st []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := func() *frame {
			if len(st) == 0 {
				return nil
			}
			return st[len(st)-1]
		}
		f := top()
		isKey := f != nil && f.obj && f.expect
		switch x := tok.(type) {
		case json.Delim:
			switch x {
			case '{':
				if f != nil && f.obj {
					f.expect = true
				}
				st = append(st, &frame{obj: true, keys: map[string]bool{}, expect: true})
			case '[':
				if f != nil && f.obj {
					f.expect = true
				}
				st = append(st, &frame{})
			default:
				st = st[:len(st)-1]
			}
			continue
		case string:
			if isKey {
				if f.keys[x] {
					return true
				}
				f.keys[x] = true
				f.expect = false
				continue
			}
		}
		if f != nil && f.obj {
			f.expect = true
		}
	}
}

func FuzzEnvelopeFastPath(f *testing.F) {
	addFixtureSeeds(f, "tasks", "pidbox", "events")
	for _, s := range []string{
		`{"body": null, "headers": "x", "properties": {"priority": "9"}}`,
		`{"body": "a\u00e9\"b", "headers": {"k\u00e9y": [1, {"x": "}"}], "t": null}, "properties": null}`,
		`{"body": 5}`, `[]`, `null`, `{"properties": []}`, `{"properties": {"delivery_info": 3}}`,
		`{"properties": {"delivery_info": {"redelivered": "yes", "exchange": 1, "x": {}}, "priority": 1e3}}`,
		`{"headers": [], "properties": {"delivery_mode": -2, "priority": "7 "}}`,
		"{\"body\": \"\xff\", \"content-type\": \"a\\/b\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gerr := DecodeEnvelope(raw)
		if hasDuplicateKeys(raw) {
			return
		}
		want, werr := refDecodeEnvelope(raw)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("errors differ: fast %v, reference %v\n%s", gerr, werr, raw)
		}
		if gerr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("error text differs: fast %q, reference %q\n%s", gerr, werr, raw)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded envelopes differ:\nfast %#v\nref  %#v\n%s", got, want, raw)
		}
	})
}
