package protocol

import (
	"bytes"
	"compress/bzip2"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Envelope is the kombu "virtual transport" message stored in Redis lists,
// the unacked hash and pub/sub channels (spec §1.1).
//
// Unknown top-level keys, unknown properties and unknown delivery_info keys
// are kept in the Extra maps and written back by Marshal, so a message we
// re-encode loses nothing. To restore a message exactly as received (only
// the redelivered flags changed) use MarkRedelivered on the raw bytes.
type Envelope struct {
	Body            string                     `json:"body"`
	ContentEncoding string                     `json:"content-encoding"`
	ContentType     string                     `json:"content-type"`
	Headers         map[string]json.RawMessage `json:"headers"`
	Properties      Properties                 `json:"properties"`
	// BadHeaders holds the raw "headers" value when it is neither an
	// object nor null; Headers is nil then and DecodeTask reports an
	// unknown message.
	BadHeaders json.RawMessage `json:"-"`
	// Extra holds unknown top-level keys, written back by Marshal.
	Extra map[string]json.RawMessage `json:"-"`
}

// DeliveryInfo is properties.delivery_info.
type DeliveryInfo struct {
	Exchange    string `json:"exchange"`
	RoutingKey  string `json:"routing_key"`
	Redelivered bool   `json:"redelivered,omitempty"`
	// Extra holds unknown keys, written back by Marshal.
	Extra map[string]json.RawMessage `json:"-"`
}

// Properties is the envelope's properties object.
type Properties struct {
	CorrelationID string       `json:"correlation_id,omitempty"`
	ReplyTo       string       `json:"reply_to,omitempty"`
	DeliveryMode  int          `json:"delivery_mode"`
	DeliveryInfo  DeliveryInfo `json:"delivery_info"`
	Priority      int          `json:"priority"`
	BodyEncoding  string       `json:"body_encoding"`
	DeliveryTag   string       `json:"delivery_tag"`
	// Extra holds unknown properties (expiration, leftovers of retried
	// messages such as origin), written back by Marshal.
	Extra map[string]json.RawMessage `json:"-"`
}

// Errors returned by the envelope functions.
var (
	// ErrBadEnvelope: the bytes are not a kombu envelope.
	ErrBadEnvelope = errors.New("protocol: malformed envelope")
	// ErrUnsupportedEncoding: unknown body_encoding, compression or
	// content-encoding.
	ErrUnsupportedEncoding = errors.New("protocol: unsupported encoding")
)

// MaxBodySize bounds the size of a decompressed body (a guard against
// compression bombs).
var MaxBodySize int64 = 512 << 20

// DecodeEnvelope parses an envelope leniently: null or missing strings are
// "", a missing or invalid priority is 0; only a non-object envelope, a
// non-string body or a non-object properties value is an error.
func DecodeEnvelope(raw []byte) (*Envelope, error) {
	env := &Envelope{}
	if err := env.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	return env, nil
}

// UnmarshalJSON implements json.Unmarshaler with DecodeEnvelope's rules.
//
// The bytes are validated once (json.Valid) and then walked in place
// (eachMember) instead of being decoded into maps of raw values and
// re-parsed member by member; duplicate keys resolve to the last one, as
// with a map. Header values alias one private copy of the headers object.
func (e *Envelope) UnmarshalJSON(raw []byte) error {
	if firstByte(raw) != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrBadEnvelope)
	}
	if err := checkNesting("envelope", raw, MaxNestingDepth); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	if !json.Valid(raw) {
		return fmt.Errorf("%w: not valid JSON%s", ErrBadEnvelope, syntaxAt(raw))
	}
	*e = Envelope{}
	var err error
	ok := eachMember(raw, func(k string, v []byte) {
		switch k {
		case "body":
			e.Body = ""
			if isNull(v) {
				return
			}
			s, ok := decodeString(v)
			if !ok {
				err = fmt.Errorf("%w: body is not a string", ErrBadEnvelope)
			}
			e.Body = s
		case "content-encoding":
			e.ContentEncoding = looseString(v)
		case "content-type":
			e.ContentType = looseString(v)
		case "headers":
			e.Headers, e.BadHeaders = nil, nil
			if isNull(v) {
				return
			}
			if firstByte(v) != '{' {
				e.BadHeaders = append(json.RawMessage(nil), v...)
				return
			}
			own := append([]byte(nil), v...)
			// Celery's task headers are ~20 members: one allocation
			// instead of growing 8 -> 16 -> 32.
			h := make(map[string]json.RawMessage, headersHint)
			if !eachMember(own, func(hk string, hv []byte) { h[hk] = hv }) {
				e.BadHeaders = own
				return
			}
			e.Headers = h
		case "properties":
			e.Properties = Properties{}
			if isNull(v) {
				return
			}
			if perr := e.Properties.decode(v); perr != nil {
				err = perr
			}
		default:
			setExtra(&e.Extra, k, v)
		}
	})
	if !ok {
		return fmt.Errorf("%w: not a JSON object", ErrBadEnvelope)
	}
	return err
}

// headersHint is the initial capacity of a decoded headers map.
const headersHint = 24

// syntaxAt describes where raw (known to be invalid JSON) breaks: ", at
// byte N: <reason>", or "" when encoding/json gives no position.
func syntaxAt(raw []byte) string {
	var v json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(raw, &v); errors.As(err, &se) {
		return fmt.Sprintf(" (byte %d: %s)", se.Offset, se.Error())
	}
	return ""
}

// UnmarshalJSON implements json.Unmarshaler leniently (see DecodeEnvelope).
func (p *Properties) UnmarshalJSON(raw []byte) error {
	if !json.Valid(raw) {
		return fmt.Errorf("%w: properties is not an object", ErrBadEnvelope)
	}
	if isNull(raw) {
		*p = Properties{}
		return nil
	}
	return p.decode(raw)
}

// decode is UnmarshalJSON for valid JSON.
func (p *Properties) decode(raw []byte) error {
	*p = Properties{}
	var err error
	ok := eachMember(raw, func(k string, v []byte) {
		switch k {
		case "correlation_id":
			p.CorrelationID = looseString(v)
		case "reply_to":
			p.ReplyTo = looseString(v)
		case "delivery_mode":
			p.DeliveryMode = looseInt(v)
		case "delivery_info":
			p.DeliveryInfo = DeliveryInfo{}
			if isNull(v) {
				return
			}
			if derr := p.DeliveryInfo.decode(v); derr != nil {
				err = derr
			}
		case "priority":
			p.Priority = looseInt(v)
		case "body_encoding":
			p.BodyEncoding = looseString(v)
		case "delivery_tag":
			p.DeliveryTag = looseString(v)
		default:
			setExtra(&p.Extra, k, v)
		}
	})
	if !ok {
		return fmt.Errorf("%w: properties is not an object", ErrBadEnvelope)
	}
	return err
}

// UnmarshalJSON implements json.Unmarshaler leniently.
func (d *DeliveryInfo) UnmarshalJSON(raw []byte) error {
	if !json.Valid(raw) {
		return fmt.Errorf("%w: delivery_info is not an object", ErrBadEnvelope)
	}
	if isNull(raw) {
		*d = DeliveryInfo{}
		return nil
	}
	return d.decode(raw)
}

// decode is UnmarshalJSON for valid JSON.
func (d *DeliveryInfo) decode(raw []byte) error {
	*d = DeliveryInfo{}
	ok := eachMember(raw, func(k string, v []byte) {
		switch k {
		case "exchange":
			d.Exchange = looseString(v)
		case "routing_key":
			d.RoutingKey = looseString(v)
		case "redelivered":
			switch string(v) {
			case "true":
				d.Redelivered = true
			case "false":
				d.Redelivered = false
			}
		default:
			setExtra(&d.Extra, k, v)
		}
	})
	if !ok {
		return fmt.Errorf("%w: delivery_info is not an object", ErrBadEnvelope)
	}
	return nil
}

// MarshalJSON writes the keys in the order kombu writes them, then the
// Extra keys sorted.
func (e Envelope) MarshalJSON() ([]byte, error) {
	var o object
	o.add("body", e.Body)
	o.add("content-encoding", e.ContentEncoding)
	o.add("content-type", e.ContentType)
	switch {
	case e.Headers != nil:
		o.add("headers", sortedRaw(e.Headers))
	case e.BadHeaders != nil:
		o.addRaw("headers", e.BadHeaders)
	default:
		o.addRaw("headers", json.RawMessage("{}"))
	}
	o.add("properties", e.Properties)
	o.addExtra(e.Extra)
	return o.bytes()
}

// MarshalJSON writes the properties in kombu's order, then Extra sorted.
func (p Properties) MarshalJSON() ([]byte, error) {
	var o object
	if p.CorrelationID != "" {
		o.add("correlation_id", p.CorrelationID)
	}
	if p.ReplyTo != "" {
		o.add("reply_to", p.ReplyTo)
	}
	o.add("delivery_mode", p.DeliveryMode)
	o.add("delivery_info", p.DeliveryInfo)
	o.add("priority", p.Priority)
	if p.BodyEncoding != "" {
		o.add("body_encoding", p.BodyEncoding)
	}
	o.add("delivery_tag", p.DeliveryTag)
	o.addExtra(p.Extra)
	return o.bytes()
}

// MarshalJSON writes exchange, routing_key, [redelivered], then Extra.
func (d DeliveryInfo) MarshalJSON() ([]byte, error) {
	var o object
	o.add("exchange", d.Exchange)
	o.add("routing_key", d.RoutingKey)
	if d.Redelivered {
		o.add("redelivered", true)
	}
	o.addExtra(d.Extra)
	return o.bytes()
}

// Marshal encodes the envelope as one JSON line.
func (e *Envelope) Marshal() ([]byte, error) { return e.MarshalJSON() }

// Header returns the header value decoded into v; ok is false when the
// header is missing, null or of another type.
func (e *Envelope) Header(name string, v any) (ok bool) {
	raw, found := e.Headers[name]
	if !found || isNull(raw) {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// HeaderString returns a string header, "" when missing/null/not a string.
func (e *Envelope) HeaderString(name string) string {
	var s string
	e.Header(name, &s)
	return s
}

// SetHeader sets a header to the JSON encoding of v.
func (e *Envelope) SetHeader(name string, v any) error {
	b, err := marshalNoEscape(v)
	if err != nil {
		return err
	}
	if e.Headers == nil {
		e.Headers = map[string]json.RawMessage{}
	}
	e.Headers[name] = b
	return nil
}

// DecodeBody returns the serialized payload: the body string decoded with
// properties.body_encoding (base64; empty or utf-8 means the string itself),
// then decompressed per headers.compression (application/x-gzip, gzip and
// zlib are zlib streams; application/x-bz2, bzip2 and bz2 are bzip2; other
// codecs are refused with ErrUnsupportedEncoding).
func (e *Envelope) DecodeBody() ([]byte, error) {
	var data []byte
	switch enc := strings.ToLower(e.Properties.BodyEncoding); enc {
	case "", "utf-8", "utf8":
		data = []byte(e.Body)
	case "base64":
		var err error
		data, err = decodeBase64(e.Body)
		if err != nil {
			return nil, fmt.Errorf("protocol: body is not valid base64: %w", err)
		}
	default:
		return nil, fmt.Errorf("%w: body_encoding %q", ErrUnsupportedEncoding, e.Properties.BodyEncoding)
	}
	comp := e.HeaderString("compression")
	if comp == "" {
		return data, nil
	}
	var r io.Reader
	switch strings.ToLower(comp) {
	case "application/x-gzip", "gzip", "zlib":
		zr, err := zlib.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("protocol: zlib body: %w", err)
		}
		defer zr.Close()
		r = zr
	case "application/x-bz2", "bzip2", "bz2":
		r = bzip2.NewReader(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("%w: compression %q (supported: zlib %q, bzip2 %q)",
			ErrUnsupportedEncoding, comp, "application/x-gzip", "application/x-bz2")
	}
	out, err := io.ReadAll(io.LimitReader(r, MaxBodySize+1))
	if err != nil {
		return nil, fmt.Errorf("protocol: decompress %s body: %w", comp, err)
	}
	if int64(len(out)) > MaxBodySize {
		return nil, fmt.Errorf("protocol: decompressed body exceeds %d bytes", MaxBodySize)
	}
	return out, nil
}

// decodeBase64 is lenient like Python's b64decode: whitespace is ignored and
// missing padding tolerated.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	return base64.RawStdEncoding.DecodeString(s)
}

// MarkRedelivered returns raw with headers.redelivered = true and
// properties.delivery_info.redelivered = true, everything else (key order,
// unknown keys, values) unchanged — what kombu does when it restores a
// message (spec §2.6).
func MarkRedelivered(raw []byte) ([]byte, error) {
	top, err := parseObject(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadEnvelope, err)
	}
	trueRaw := json.RawMessage("true")

	headers := &object{}
	if h, ok := top.get("headers"); ok && !isNull(h) {
		if headers, err = parseObject(h); err != nil {
			return nil, fmt.Errorf("%w: headers: %w", ErrBadEnvelope, err)
		}
	}
	headers.set("redelivered", trueRaw)
	hb, _ := headers.bytes()
	top.set("headers", hb)

	props := &object{}
	if p, ok := top.get("properties"); ok && !isNull(p) {
		if props, err = parseObject(p); err != nil {
			return nil, fmt.Errorf("%w: properties: %w", ErrBadEnvelope, err)
		}
	}
	di := &object{}
	if d, ok := props.get("delivery_info"); ok && !isNull(d) {
		if di, err = parseObject(d); err != nil {
			return nil, fmt.Errorf("%w: delivery_info: %w", ErrBadEnvelope, err)
		}
	}
	di.set("redelivered", trueRaw)
	db, _ := di.bytes()
	props.set("delivery_info", db)
	pb, _ := props.bytes()
	top.set("properties", pb)
	return top.bytes()
}

// --- small JSON helpers -------------------------------------------------

func isNull(v json.RawMessage) bool {
	if len(v) == 4 && string(v) == "null" {
		return true
	}
	return len(bytes.TrimSpace(v)) == 0 || string(bytes.TrimSpace(v)) == "null"
}

// looseString decodes a JSON string; anything else yields "".
func looseString(v json.RawMessage) string {
	if s, ok := simpleString(v); ok {
		return s
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}

// looseInt decodes a JSON number (or numeric string) as an int; anything
// else yields 0.
func looseInt(v json.RawMessage) int {
	if n, ok := simpleInt(v); ok && n > -1e9 && n < 1e9 {
		return n
	}
	var n json.Number
	if json.Unmarshal(v, &n) != nil {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0
		}
		n = json.Number(strings.TrimSpace(s))
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return int(i)
	}
	if f, err := strconv.ParseFloat(string(n), 64); err == nil && f > -1e9 && f < 1e9 {
		return int(f)
	}
	return 0
}

func setExtra(m *map[string]json.RawMessage, k string, v json.RawMessage) {
	if *m == nil {
		*m = map[string]json.RawMessage{}
	}
	(*m)[k] = append(json.RawMessage(nil), v...)
}

// marshalNoEscape is json.Marshal without HTML escaping and without the
// trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	if b, ok := marshalFast(v); ok {
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// sortedRaw marshals a map of raw values with sorted keys (what
// encoding/json does anyway, spelled out to avoid HTML escaping).
type sortedRaw map[string]json.RawMessage

func (m sortedRaw) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var o object
	for _, k := range keys {
		v := m[k]
		if len(bytes.TrimSpace(v)) == 0 {
			v = json.RawMessage("null")
		}
		o.addRaw(k, v)
	}
	return o.bytes()
}

// object is an ordered JSON object of raw values.
type object struct {
	keys []string
	vals map[string]json.RawMessage
	err  error
}

func (o *object) addRaw(k string, v json.RawMessage) {
	if o.vals == nil {
		o.vals = map[string]json.RawMessage{}
	}
	if _, dup := o.vals[k]; !dup {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) set(k string, v json.RawMessage) { o.addRaw(k, v) }

func (o *object) add(k string, v any) {
	b, err := marshalNoEscape(v)
	if err != nil && o.err == nil {
		o.err = fmt.Errorf("protocol: encode %s: %w", k, err)
	}
	o.addRaw(k, b)
}

func (o *object) addExtra(m map[string]json.RawMessage) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if _, known := o.vals[k]; !known {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		if len(bytes.TrimSpace(v)) == 0 {
			v = json.RawMessage("null")
		}
		o.addRaw(k, v)
	}
}

func (o *object) get(k string) (json.RawMessage, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) bytes() ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteString(", ")
		}
		kb, _ := marshalNoEscape(k)
		buf.Write(kb)
		buf.WriteString(": ")
		buf.Write(o.vals[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// parseObject parses a JSON object keeping its key order.
func parseObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	o := &object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad object key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o.addRaw(k, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return o, nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
