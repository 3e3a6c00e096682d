package protocol

import "encoding/json"

// Envelope is the kombu "virtual transport" message stored in Redis lists,
// the unacked hash and pub/sub channels (spec §1.1).
//
// Unknown top-level keys and unknown properties are preserved by Raw /
// Properties.Extra so that a message restored by us is byte-for-byte what a
// Python peer would restore, apart from the redelivered flags.
type Envelope struct {
	Body            string                     `json:"body"`
	ContentEncoding string                     `json:"content-encoding"`
	ContentType     string                     `json:"content-type"`
	Headers         map[string]json.RawMessage `json:"headers"`
	Properties      Properties                 `json:"properties"`
}

// DeliveryInfo is properties.delivery_info.
type DeliveryInfo struct {
	Exchange    string `json:"exchange"`
	RoutingKey  string `json:"routing_key"`
	Redelivered bool   `json:"redelivered,omitempty"`
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
}
