package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// ReplyTo is the reply address of a remote-control request (spec §4.2).
type ReplyTo struct {
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routing_key"`
}

// ControlRequest is a decoded remote-control (pidbox) request (spec §4.2).
type ControlRequest struct {
	Method      string
	Arguments   map[string]any // JSON numbers are json.Number
	Destination []string       // empty: every node
	Pattern     string         // with Matcher, used when Destination is empty
	Matcher     string         // "glob" or "pcre"
	Ticket      string         // "" for a cast (no reply wanted)
	ReplyTo     *ReplyTo       // nil for a cast
	Clock       int64          // headers.clock, the sender's Lamport clock
	Expires     float64        // headers.expires (epoch seconds); informational
}

// ErrInvalidControl: the body is JSON but not a control request.
var ErrInvalidControl = errors.New("protocol: invalid control request")

// WantsReply reports whether the sender waits for a reply.
func (r *ControlRequest) WantsReply() bool {
	return r.ReplyTo != nil && r.Ticket != ""
}

// DecodeControlRequest decodes a request received on the pidbox channel.
// Only JSON is accepted (*ContentDisallowedError otherwise); an unusable
// body yields ErrUndecodable, a body without a method ErrInvalidControl.
func DecodeControlRequest(env *Envelope) (*ControlRequest, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrInvalidControl)
	}
	data, err := decodePayload(env)
	if err != nil {
		return nil, err
	}
	var body map[string]json.RawMessage
	if err := unmarshalNumber(data, &body); err != nil || body == nil {
		return nil, fmt.Errorf("%w: body is not an object", ErrInvalidControl)
	}
	req := &ControlRequest{}
	if json.Unmarshal(body["method"], &req.Method) != nil || req.Method == "" {
		return nil, fmt.Errorf("%w: missing method", ErrInvalidControl)
	}
	if raw := body["arguments"]; !isNull(raw) {
		if unmarshalNumber(raw, &req.Arguments) != nil {
			return nil, fmt.Errorf("%w: arguments is not an object", ErrInvalidControl)
		}
	}
	if req.Arguments == nil {
		req.Arguments = map[string]any{}
	}
	if raw := body["destination"]; !isNull(raw) {
		if json.Unmarshal(raw, &req.Destination) != nil {
			var one string
			if json.Unmarshal(raw, &one) != nil {
				return nil, fmt.Errorf("%w: destination is not a list of node names", ErrInvalidControl)
			}
			req.Destination = []string{one}
		}
	}
	req.Pattern = looseString(body["pattern"])
	req.Matcher = looseString(body["matcher"])
	req.Ticket = looseString(body["ticket"])
	if raw := body["reply_to"]; !isNull(raw) {
		var rt ReplyTo
		if json.Unmarshal(raw, &rt) != nil {
			return nil, fmt.Errorf("%w: reply_to is not an object", ErrInvalidControl)
		}
		req.ReplyTo = &rt
	}
	if raw, ok := env.Headers["clock"]; ok {
		req.Clock = int64(looseInt(raw))
	}
	if raw, ok := env.Headers["expires"]; ok {
		var f float64
		if json.Unmarshal(raw, &f) == nil {
			req.Expires = f
		}
	}
	return req, nil
}

// AddressedTo reports whether the node handles the request (kombu
// Node.handle_message): a non-empty destination must list it; otherwise a
// pattern with a matcher ("glob": fnmatch, "pcre": regex match at the
// start) must match it; otherwise every node handles it. An unknown
// matcher or an invalid pattern matches nothing.
func (r *ControlRequest) AddressedTo(node string) bool {
	if len(r.Destination) > 0 {
		return slices.Contains(r.Destination, node)
	}
	if r.Pattern == "" || r.Matcher == "" {
		return true
	}
	var expr string
	switch r.Matcher {
	case "glob":
		expr = globToRegexp(r.Pattern)
	case "pcre":
		expr = `^(?:` + r.Pattern + `)`
	default:
		return false
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return false
	}
	return re.MatchString(node)
}

// globToRegexp translates a Python fnmatch pattern into an anchored regexp.
func globToRegexp(pat string) string {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for i := 0; i < len(pat); {
		c := pat[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
			i++
		case '?':
			b.WriteString(`.`)
			i++
		case '[':
			j := i + 1
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				i++
				continue
			}
			set := pat[i+1 : j]
			neg := strings.HasPrefix(set, "!")
			if neg {
				set = set[1:]
			}
			set = strings.ReplaceAll(set, `\`, `\\`)
			set = strings.ReplaceAll(set, `[`, `\[`)
			set = strings.ReplaceAll(set, `^`, `\^`)
			if neg {
				b.WriteString(`[^` + set + `]`)
			} else {
				b.WriteString(`[` + set + `]`)
			}
			i = j + 1
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
			i++
		}
	}
	b.WriteString(`$`)
	return b.String()
}

// EncodeControlReply returns the envelope a node LPUSHes to the reply
// queue (spec §4.4): body {node: value}, headers {ticket, clock},
// delivery_mode 1, delivery_info = reply_to. Floats in value keep ".0".
func EncodeControlReply(node, ticket string, replyTo ReplyTo, value any, clock int64) ([]byte, error) {
	var body object
	body.add(node, pyJSONValue(value))
	bb, err := body.bytes()
	if err != nil {
		return nil, err
	}
	var h object
	h.add("ticket", ticket)
	h.add("clock", clock)
	hb, _ := h.bytes()
	return encodeSimple(bb, hb, Properties{
		DeliveryMode: 1,
		DeliveryInfo: DeliveryInfo{Exchange: replyTo.Exchange, RoutingKey: replyTo.RoutingKey},
	})
}

// DecodeControlReply decodes a reply envelope into the replying node, its
// value and the ticket header.
func DecodeControlReply(env *Envelope) (node string, value any, ticket string, err error) {
	data, err := decodePayload(env)
	if err != nil {
		return "", nil, "", err
	}
	var body map[string]any
	if err := unmarshalNumber(data, &body); err != nil || len(body) != 1 {
		return "", nil, "", fmt.Errorf("%w: reply body must be {node: value}", ErrInvalidControl)
	}
	for k, v := range body {
		node, value = k, v
	}
	return node, value, env.HeaderString("ticket"), nil
}

// EncodeControlRequest returns the envelope a client PUBLISHes on the
// pidbox channel (spec §4.2); ticket and reply_to are written only when
// the request wants a reply. Used by tests and tools.
func EncodeControlRequest(req *ControlRequest) ([]byte, error) {
	if req == nil || req.Method == "" {
		return nil, fmt.Errorf("%w: missing method", ErrInvalidControl)
	}
	var body object
	body.add("method", req.Method)
	args := req.Arguments
	if args == nil {
		args = map[string]any{}
	}
	body.add("arguments", pyJSONValue(args))
	if len(req.Destination) > 0 {
		body.add("destination", req.Destination)
	} else {
		body.add("destination", nil)
	}
	nullStr := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	body.add("pattern", nullStr(req.Pattern))
	body.add("matcher", nullStr(req.Matcher))
	if req.ReplyTo != nil {
		body.add("ticket", req.Ticket)
		body.add("reply_to", req.ReplyTo)
	}
	bb, err := body.bytes()
	if err != nil {
		return nil, err
	}
	var h object
	h.add("clock", req.Clock)
	if req.Expires != 0 {
		h.add("expires", Float(req.Expires))
	}
	hb, _ := h.bytes()
	return encodeSimple(bb, hb, Properties{
		DeliveryMode: 2,
		DeliveryInfo: DeliveryInfo{Exchange: PidboxExchange},
	})
}

// encodeSimple builds a JSON envelope around an already encoded body and
// ordered headers object.
func encodeSimple(body, headers []byte, p Properties) ([]byte, error) {
	p.BodyEncoding = "base64"
	p.DeliveryTag = pyfmt.NewUUID4().String()
	env := Envelope{
		Body:            base64Std(body),
		ContentEncoding: "utf-8",
		ContentType:     ContentTypeJSON,
		Properties:      p,
		BadHeaders:      headers,
	}
	return env.MarshalJSON()
}
