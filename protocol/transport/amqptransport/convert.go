package amqptransport

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/omicsomics/omics-worker/protocol"
)

// The runtime speaks kombu's virtual-transport envelope (the JSON object
// the Redis transport stores). An AMQP message carries the same fields
// natively: toEnvelope builds the envelope of a delivery exactly as
// kombu's Redis transport would have stored it (body base64), and
// toPublishing does the reverse for what the runtime publishes.

// toEnvelope encodes a delivery as a kombu envelope; tag is the delivery
// tag string the runtime will hand back.
func toEnvelope(d *amqp.Delivery, tag string) ([]byte, error) {
	env := protocol.Envelope{
		Body:            base64.StdEncoding.EncodeToString(d.Body),
		ContentEncoding: d.ContentEncoding,
		ContentType:     d.ContentType,
		Headers:         map[string]json.RawMessage{},
		Properties: protocol.Properties{
			CorrelationID: d.CorrelationId,
			ReplyTo:       d.ReplyTo,
			DeliveryMode:  int(d.DeliveryMode),
			Priority:      int(d.Priority),
			BodyEncoding:  "base64",
			DeliveryTag:   tag,
			DeliveryInfo: protocol.DeliveryInfo{
				Exchange: d.Exchange, RoutingKey: d.RoutingKey, Redelivered: d.Redelivered,
			},
		},
	}
	for k, v := range d.Headers {
		b, err := json.Marshal(fromAMQP(v))
		if err != nil {
			return nil, fmt.Errorf("amqp: header %q: %w", k, err)
		}
		env.Headers[k] = b
	}
	if d.Expiration != "" {
		b, _ := json.Marshal(d.Expiration)
		env.Properties.Extra = map[string]json.RawMessage{"expiration": b}
	}
	return env.Marshal()
}

// fromAMQP turns a decoded AMQP field value into a JSON-encodable one.
func fromAMQP(v any) any {
	switch x := v.(type) {
	case amqp.Table:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = fromAMQP(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = fromAMQP(e)
		}
		return s
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05")
	case amqp.Decimal:
		return float64(x.Value) / math.Pow10(int(x.Scale))
	}
	return v
}

// publishing is an envelope turned into an AMQP message.
func toPublishing(envelope []byte, defaultMode uint8) (amqp.Publishing, error) {
	env, err := protocol.DecodeEnvelope(envelope)
	if err != nil {
		return amqp.Publishing{}, err
	}
	var body []byte
	switch env.Properties.BodyEncoding {
	case "base64":
		body, err = base64.StdEncoding.DecodeString(env.Body)
		if err != nil {
			return amqp.Publishing{}, fmt.Errorf("amqp: envelope body: %w", err)
		}
	default:
		body = []byte(env.Body)
	}
	p := amqp.Publishing{
		Body: body, ContentType: env.ContentType, ContentEncoding: env.ContentEncoding,
		CorrelationId: env.Properties.CorrelationID, ReplyTo: env.Properties.ReplyTo,
		DeliveryMode: uint8(env.Properties.DeliveryMode),
		Priority:     uint8(min(max(env.Properties.Priority, 0), 255)),
	}
	if p.DeliveryMode == 0 {
		p.DeliveryMode = defaultMode
	}
	if len(env.Headers) > 0 {
		p.Headers = amqp.Table{}
		for k, raw := range env.Headers {
			if k == "redelivered" { // a Redis-transport artefact
				continue
			}
			v, err := decodeJSONValue(raw)
			if err != nil {
				return amqp.Publishing{}, fmt.Errorf("amqp: header %q: %w", k, err)
			}
			p.Headers[k] = v
		}
	}
	if e, ok := env.Properties.Extra["expiration"]; ok {
		var s string
		if json.Unmarshal(e, &s) == nil {
			p.Expiration = s
		}
	}
	return p, nil
}

func decodeJSONValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return toAMQP(v), nil
}

// toAMQP maps a JSON value to the AMQP field types py-amqp would use:
// integers as signed 32-bit (I) or 64-bit (l), other numbers as double,
// objects as tables, null as void.
func toAMQP(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			if i >= math.MinInt32 && i <= math.MaxInt32 {
				return int32(i)
			}
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		t := amqp.Table{}
		for k, e := range x {
			t[k] = toAMQP(e)
		}
		return t
	case []any:
		for i, e := range x {
			x[i] = toAMQP(e)
		}
		return x
	}
	return v
}

// headerString returns a string header of a delivery ("" if absent).
func headerString(h amqp.Table, k string) string {
	switch v := h[k].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// deliveryETA is the eta of a protocol-2 task message (headers["eta"]);
// zero when none or unparsable.
func deliveryETA(d *amqp.Delivery) time.Time {
	s := headerString(d.Headers, "eta")
	if s == "" {
		return time.Time{}
	}
	t, err := protocol.ParseISO(s)
	if err != nil {
		return time.Time{}
	}
	return t
}
