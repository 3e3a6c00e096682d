package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// Signature is a Celery canvas signature (spec §1.4).
type Signature = map[string]any

// Embed is the third element of a protocol-v2 body (spec §1.4).
type Embed struct {
	Callbacks []Signature `json:"callbacks"`
	Errbacks  []Signature `json:"errbacks"`
	Chain     []Signature `json:"chain"`
	Chord     Signature   `json:"chord"`
}

// TaskMessage is a decoded Celery task message, protocol v1, v2 or hybrid,
// normalised to the v2 view (spec §1.3–§1.6). JSON numbers in Args/Kwargs are
// json.Number (decoded with UseNumber); kombu typed values
// {"__type__": …, "__value__": …} are left as plain maps.
type TaskMessage struct {
	Version      int  // 1 or 2 (hybrid messages report 2)
	Hybrid       bool // v2 headers with a v1-style object body
	ID           string
	Task         string
	Shadow       string
	Args         []any
	Kwargs       map[string]any
	Embed        Embed
	Retries      int
	ETA          *time.Time
	Expires      *time.Time
	ExpiresRaw   string      // the header text as sent, copied unchanged on retry
	TimeLimit    [2]*float64 // [hard, soft] as in the header
	RootID       string      // "" for v1 messages (Python's request.root_id is None)
	ParentID     string
	Group        string
	GroupIndex   *int
	ArgsRepr     string
	KwargsRepr   string
	Origin       string
	IgnoreResult bool
	Stamps       map[string]any
	// Headers holds every header as received (custom headers included), so
	// a retry republishes them. Empty for v1 messages. For protocol 2 it
	// is the envelope's own map (not copied: one allocation less per
	// task); treat it as read-only.
	Headers map[string]json.RawMessage
}

// Sentinel errors of DecodeTask (spec §1.6). The worker rejects
// ErrUnknownMessage, ErrContentDisallowed and ErrInvalidTask messages
// without requeue and acks ErrUndecodable ones.
var (
	// ErrUnknownMessage: neither a v2 "task" header nor a v1 body.
	ErrUnknownMessage = errors.New("protocol: unknown message (no task header and no v1 task body)")
	// ErrContentDisallowed: a serializer other than JSON; always wrapped in
	// a *ContentDisallowedError.
	ErrContentDisallowed = errors.New("protocol: content type not allowed")
	// ErrInvalidTask: malformed headers or body; wrapped in *InvalidTaskError.
	ErrInvalidTask = errors.New("protocol: invalid task message")
	// ErrUndecodable: the body cannot be decoded (encoding, compression,
	// JSON syntax).
	ErrUndecodable = errors.New("protocol: undecodable message body")
)

// ContentTypeJSON is the only content type DecodeTask accepts.
const ContentTypeJSON = "application/json"

// ContentDisallowedError reports a message whose serializer is refused.
type ContentDisallowedError struct {
	ContentType string
}

// Serializer names the kombu serializer of the content type.
func (e *ContentDisallowedError) Serializer() string {
	switch normContentType(e.ContentType) {
	case "application/x-python-serialize":
		return "pickle"
	case "application/x-yaml":
		return "yaml"
	case "application/x-msgpack":
		return "msgpack"
	case "application/data":
		return "raw binary (or celery.security 'auth')"
	case "text/plain", "application/text":
		return "raw text"
	case "":
		return "unnamed"
	default:
		return "unknown"
	}
}

func (e *ContentDisallowedError) Error() string {
	why := "only JSON is accepted"
	if e.Serializer() == "pickle" {
		why = "only JSON is accepted (pickle could execute arbitrary code)"
	}
	return fmt.Sprintf("refusing to deserialize a %s message (content-type %s): %s",
		e.Serializer(), e.ContentType, why)
}

// Unwrap makes errors.Is(err, ErrContentDisallowed) true.
func (e *ContentDisallowedError) Unwrap() error { return ErrContentDisallowed }

// InvalidTaskError reports which field of a task message is malformed.
type InvalidTaskError struct {
	Field  string // header or body field, e.g. "eta", "kwargs", "embed.chain"
	Reason string
}

func (e *InvalidTaskError) Error() string {
	return fmt.Sprintf("protocol: invalid task message: field %q: %s", e.Field, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalidTask) true.
func (e *InvalidTaskError) Unwrap() error { return ErrInvalidTask }

func invalid(field, format string, a ...any) error {
	return &InvalidTaskError{Field: field, Reason: fmt.Sprintf(format, a...)}
}

func normContentType(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// decodePayload checks the content type and returns the body JSON bytes.
func decodePayload(env *Envelope) ([]byte, error) {
	if normContentType(env.ContentType) != ContentTypeJSON {
		return nil, &ContentDisallowedError{ContentType: env.ContentType}
	}
	data, err := env.DecodeBody()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	switch strings.ToLower(env.ContentEncoding) {
	case "", "utf-8", "utf8", "binary", "ascii", "us-ascii":
		// kombu's JSON decoder runs bytes.decode('utf-8') whatever the
		// content-encoding: a body that is not UTF-8 is refused.
		if err := checkUTF8(data); err != nil {
			return nil, fmt.Errorf("%w: body is not valid JSON: %w", ErrUndecodable, err)
		}
	case "latin-1", "latin1", "iso-8859-1":
		var b strings.Builder
		for _, c := range data {
			b.WriteRune(rune(c))
		}
		data = []byte(b.String())
	default:
		return nil, fmt.Errorf("%w: %w: content-encoding %q", ErrUndecodable, ErrUnsupportedEncoding, env.ContentEncoding)
	}
	if err := checkNesting("body", data, MaxNestingDepth); err != nil {
		return nil, fmt.Errorf("%w: body is not valid JSON: %w", ErrUndecodable, err)
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%w: body is not valid JSON", ErrUndecodable)
	}
	return data, nil
}

// unmarshalNumber is json.Unmarshal with UseNumber (trailing data is an
// error, as with json.Unmarshal).
func unmarshalNumber(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("protocol: trailing data after JSON value")
	}
	return nil
}

// headersUsable reports whether the envelope's headers count as a mapping
// (kombu treats a falsy value as {}).
func headersUsable(env *Envelope) bool {
	if env.BadHeaders == nil {
		return true
	}
	switch string(bytes.TrimSpace(env.BadHeaders)) {
	case `[]`, `""`, `0`, `false`:
		return true
	}
	return false
}

// DecodeTask classifies and decodes a task message (spec §1.6): a "task"
// header means v2 (hybrid if the body is an object with "args"), else a body
// object with "task" means v1, else ErrUnknownMessage. Only JSON bodies are
// accepted (*ContentDisallowedError otherwise).
func DecodeTask(env *Envelope) (*TaskMessage, error) {
	if env == nil {
		return nil, fmt.Errorf("%w: nil envelope", ErrUnknownMessage)
	}
	if !headersUsable(env) {
		return nil, fmt.Errorf("%w: headers is not a mapping", ErrUnknownMessage)
	}
	if _, v2 := env.Headers["task"]; v2 {
		data, err := decodePayload(env)
		if err != nil {
			return nil, err
		}
		// Only an object body can be hybrid (a v2 body is an array).
		var obj map[string]json.RawMessage
		if firstByte(data) == '{' && unmarshalNumber(data, &obj) == nil && obj != nil {
			if _, hasArgs := obj["args"]; hasArgs {
				return decodeHybrid(env, obj)
			}
		}
		return decodeV2(env, data)
	}
	data, err := decodePayload(env)
	if err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if unmarshalNumber(data, &obj) != nil || obj == nil {
		return nil, fmt.Errorf("%w: no task header and the body is not a v1 task object", ErrUnknownMessage)
	}
	if _, ok := obj["task"]; !ok {
		return nil, fmt.Errorf("%w: no task header and no task key in the body", ErrUnknownMessage)
	}
	return decodeV1(env, obj)
}

func copyHeaders(h map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

func decodeV2(env *Envelope, data []byte) (*TaskMessage, error) {
	msg := &TaskMessage{Version: 2, Headers: env.Headers}
	if err := applyHeaders(msg, env.Headers); err != nil {
		return nil, err
	}
	// data is valid JSON (decodePayload checked it).
	els, ok := elements(data)
	if !ok && !isNull(data) {
		return nil, invalid("body", "protocol v2 body must be an array [args, kwargs, embed]")
	}
	parts := make([]json.RawMessage, len(els))
	for i, e := range els {
		parts[i] = e
	}
	if len(parts) < 2 || len(parts) > 3 {
		return nil, invalid("body", "protocol v2 body must have 3 elements, got %d", len(parts))
	}
	var err error
	if msg.Args, err = decodeArgs(parts[0]); err != nil {
		return nil, err
	}
	if msg.Kwargs, err = decodeKwargs(parts[1]); err != nil {
		return nil, err
	}
	if len(parts) == 3 {
		if msg.Embed, err = decodeEmbed(parts[2]); err != nil {
			return nil, err
		}
	}
	fillRepr(msg)
	return msg, nil
}

// hybridKeys are the body fields celery's hybrid_to_proto2 lifts into headers.
var hybridKeys = []string{"lang", "task", "id", "root_id", "parent_id", "group", "meth",
	"shadow", "eta", "expires", "retries", "timelimit", "argsrepr", "kwargsrepr", "origin"}

func decodeHybrid(env *Envelope, body map[string]json.RawMessage) (*TaskMessage, error) {
	h := map[string]json.RawMessage{}
	for _, k := range hybridKeys {
		if v, ok := body[k]; ok {
			h[k] = v
		}
	}
	for k, v := range env.Headers {
		h[k] = v
	}
	msg := &TaskMessage{Version: 2, Hybrid: true, Headers: copyHeaders(env.Headers)}
	if err := applyHeaders(msg, h); err != nil {
		return nil, err
	}
	if err := applyV1Body(msg, body); err != nil {
		return nil, err
	}
	fillRepr(msg)
	return msg, nil
}

func decodeV1(env *Envelope, body map[string]json.RawMessage) (*TaskMessage, error) {
	h := copyHeaders(body)
	if ts, ok := body["taskset"]; ok {
		h["group"] = ts // taskset is the old name of group and wins
	}
	delete(h, "argsrepr")
	delete(h, "kwargsrepr")
	msg := &TaskMessage{Version: 1, Headers: copyHeaders(env.Headers)}
	if err := applyHeaders(msg, h); err != nil {
		return nil, err
	}
	if err := applyV1Body(msg, body); err != nil {
		return nil, err
	}
	fillRepr(msg)
	return msg, nil
}

// applyV1Body reads args, kwargs and the v1 embed fields of an object body.
func applyV1Body(msg *TaskMessage, body map[string]json.RawMessage) error {
	var err error
	if msg.Args, err = decodeArgs(body["args"]); err != nil {
		return err
	}
	if msg.Kwargs, err = decodeKwargs(body["kwargs"]); err != nil {
		return err
	}
	if msg.Embed.Callbacks, err = decodeSigList("callbacks", body["callbacks"]); err != nil {
		return err
	}
	if msg.Embed.Errbacks, err = decodeSigList("errbacks", body["errbacks"]); err != nil {
		return err
	}
	if msg.Embed.Chord, err = decodeSig("chord", body["chord"]); err != nil {
		return err
	}
	return nil
}

func fillRepr(msg *TaskMessage) {
	// celery's proto1_to_proto2 uses saferepr without a length limit
	if msg.ArgsRepr == "" {
		msg.ArgsRepr = safeReprUnlimited(msg.Args)
	}
	if msg.KwargsRepr == "" {
		msg.KwargsRepr = safeReprUnlimited(msg.Kwargs)
	}
}

func decodeArgs(raw json.RawMessage) ([]any, error) {
	if isNull(raw) || string(raw) == "[]" {
		return []any{}, nil
	}
	var args []any
	if err := unmarshalNumber(raw, &args); err != nil {
		return nil, invalid("args", "positional arguments must be a list")
	}
	if args == nil {
		args = []any{}
	}
	return args, nil
}

func decodeKwargs(raw json.RawMessage) (map[string]any, error) {
	if isNull(raw) || string(raw) == "{}" {
		return map[string]any{}, nil
	}
	var kw map[string]any
	if err := unmarshalNumber(raw, &kw); err != nil {
		return nil, invalid("kwargs", "task keyword arguments must be a mapping")
	}
	if kw == nil {
		kw = map[string]any{}
	}
	return kw, nil
}

func decodeEmbed(raw json.RawMessage) (Embed, error) {
	var e Embed
	if isNull(raw) {
		return e, nil
	}
	var m map[string]json.RawMessage
	if json.Valid(raw) && firstByte(raw) == '{' {
		// Celery's usual embed has four null members: walk it in place.
		m = map[string]json.RawMessage{}
		eachMember(raw, func(k string, v []byte) { m[k] = v })
	} else if err := json.Unmarshal(raw, &m); err != nil {
		return e, invalid("embed", "must be a mapping")
	}
	var err error
	if e.Callbacks, err = decodeSigList("embed.callbacks", m["callbacks"]); err != nil {
		return e, err
	}
	if e.Errbacks, err = decodeSigList("embed.errbacks", m["errbacks"]); err != nil {
		return e, err
	}
	if e.Chain, err = decodeSigList("embed.chain", m["chain"]); err != nil {
		return e, err
	}
	if e.Chord, err = decodeSig("embed.chord", m["chord"]); err != nil {
		return e, err
	}
	return e, nil
}

func decodeSigList(field string, raw json.RawMessage) ([]Signature, error) {
	if isNull(raw) {
		return nil, nil
	}
	var l []Signature
	if err := unmarshalNumber(raw, &l); err != nil {
		// a single signature is accepted as a one-element list
		var one Signature
		if unmarshalNumber(raw, &one) == nil && one != nil {
			return []Signature{one}, nil
		}
		return nil, invalid(field, "must be a list of signatures")
	}
	for i, s := range l {
		if s == nil {
			return nil, invalid(field, "element %d is not a signature", i)
		}
	}
	return l, nil
}

func decodeSig(field string, raw json.RawMessage) (Signature, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s Signature
	if err := unmarshalNumber(raw, &s); err != nil {
		return nil, invalid(field, "must be a signature (mapping)")
	}
	return s, nil
}

// applyHeaders fills the metadata fields from v2 headers (or the
// header-like fields of a v1/hybrid body).
func applyHeaders(msg *TaskMessage, h map[string]json.RawMessage) error {
	var err error
	str := func(key string, dst *string, required bool) {
		if err != nil {
			return
		}
		raw, ok := h[key]
		if !ok || isNull(raw) {
			if required {
				err = invalid(key, "missing")
			}
			return
		}
		if s, ok := simpleString(raw); ok {
			*dst = s
		} else if json.Unmarshal(raw, dst) != nil {
			err = invalid(key, "must be a string, got %s", clip(raw))
			return
		}
		if required && *dst == "" {
			err = invalid(key, "must not be empty")
		}
	}
	str("task", &msg.Task, true)
	str("id", &msg.ID, true)
	str("shadow", &msg.Shadow, false)
	str("root_id", &msg.RootID, false)
	str("parent_id", &msg.ParentID, false)
	str("group", &msg.Group, false)
	str("argsrepr", &msg.ArgsRepr, false)
	str("kwargsrepr", &msg.KwargsRepr, false)
	str("origin", &msg.Origin, false)
	if err != nil {
		return err
	}
	if raw, ok := h["retries"]; ok && !isNull(raw) {
		n, ok := jsonInt(raw)
		if !ok {
			return invalid("retries", "must be an integer, got %s", clip(raw))
		}
		msg.Retries = n
	}
	if raw, ok := h["group_index"]; ok && !isNull(raw) {
		n, ok := jsonInt(raw)
		if !ok {
			return invalid("group_index", "must be an integer, got %s", clip(raw))
		}
		msg.GroupIndex = &n
	}
	if raw, ok := h["ignore_result"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &msg.IgnoreResult) != nil {
			return invalid("ignore_result", "must be a boolean, got %s", clip(raw))
		}
	}
	if raw, ok := h["timelimit"]; ok && !isNull(raw) {
		var tl []json.RawMessage
		if json.Unmarshal(raw, &tl) != nil || len(tl) > 2 {
			return invalid("timelimit", "must be [hard, soft], got %s", clip(raw))
		}
		for i, v := range tl {
			if isNull(v) {
				continue
			}
			var f float64
			if json.Unmarshal(v, &f) != nil {
				return invalid("timelimit", "limits must be numbers or null, got %s", clip(raw))
			}
			msg.TimeLimit[i] = &f
		}
	}
	if raw, ok := h["stamps"]; ok && !isNull(raw) {
		if unmarshalNumber(raw, &msg.Stamps) != nil {
			return invalid("stamps", "must be a mapping, got %s", clip(raw))
		}
	}
	if msg.ETA, _, err = timeHeader("eta", h["eta"]); err != nil {
		return err
	}
	if msg.Expires, msg.ExpiresRaw, err = timeHeader("expires", h["expires"]); err != nil {
		return err
	}
	return nil
}

// timeHeader parses an eta/expires value: an ISO string (naive = UTC), a
// number of Unix seconds, or a kombu typed datetime.
func timeHeader(field string, raw json.RawMessage) (*time.Time, string, error) {
	if isNull(raw) {
		return nil, "", nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, "", nil
		}
		t, err := ParseISO(s)
		if err != nil {
			return nil, "", invalid(field, "%v", err)
		}
		return &t, s, nil
	}
	var n json.Number
	if unmarshalNumber(raw, &n) == nil {
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
			return nil, "", invalid(field, "bad timestamp %s", clip(raw))
		}
		sec, frac := math.Modf(f)
		t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		return &t, string(n), nil
	}
	var typed struct {
		Type  string `json:"__type__"`
		Value string `json:"__value__"`
	}
	if json.Unmarshal(raw, &typed) == nil && typed.Type == "datetime" {
		t, err := ParseISO(typed.Value)
		if err != nil {
			return nil, "", invalid(field, "%v", err)
		}
		return &t, typed.Value, nil
	}
	return nil, "", invalid(field, "must be an ISO-8601 string, got %s", clip(raw))
}

// jsonInt decodes an integral JSON number.
func jsonInt(raw json.RawMessage) (int, bool) {
	if n, ok := simpleInt(raw); ok {
		return n, true
	}
	var n json.Number
	if unmarshalNumber(raw, &n) != nil {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return int(i), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int(f), true
}

func clip(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

// PeekTaskID extracts the task id and name from a message that may not
// decode as a task, best effort, so that a FAILURE can be written for it:
// v2 headers first, then a JSON v1 body.
func PeekTaskID(env *Envelope) (id, task string) {
	if env == nil {
		return "", ""
	}
	id, task = env.HeaderString("id"), env.HeaderString("task")
	if id != "" {
		return id, task
	}
	data, err := env.DecodeBody()
	if err != nil {
		return "", task
	}
	// A v1 body (an object with id and task), read shallowly: the body
	// may be too deep or otherwise undecodable.
	if bid, btask, ok := peekIDTask(data); ok {
		id = bid
		if task == "" {
			task = btask
		}
	}
	if id == "" {
		id = env.Properties.CorrelationID
	}
	return id, task
}

// NewTaskMessage returns a v2 message for task with a new id (root_id = id).
func NewTaskMessage(task string, args []any, kwargs map[string]any) *TaskMessage {
	id := pyfmt.NewUUID4().String()
	if args == nil {
		args = []any{}
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	return &TaskMessage{Version: 2, ID: id, RootID: id, Task: task, Args: args, Kwargs: kwargs}
}

// PublishOptions says where EncodeTask's envelope is routed.
type PublishOptions struct {
	// Queue is the target queue; RoutingKey defaults to it, and both
	// default to "celery".
	Queue string
	// Exchange is delivery_info.exchange; "" (the default) routes straight
	// to the queue named by the routing key, as Celery does.
	Exchange   string
	RoutingKey string
	// ReplyTo is properties.reply_to (Python puts its client oid there).
	ReplyTo string
	// Priority is properties.priority, 0..9 (0 is the highest on Redis).
	Priority int
	// Origin is the origin header when msg.Origin is empty.
	Origin string
}

// coreHeaders are the v2 headers EncodeTask writes itself, in Python order.
var coreHeaders = []string{"lang", "task", "id", "shadow", "eta", "expires", "group",
	"group_index", "retries", "timelimit", "root_id", "parent_id", "argsrepr",
	"kwargsrepr", "origin", "ignore_result"}

// EncodeTask returns the complete protocol-v2 envelope of msg (spec §1.1,
// §1.3, §1.8) with a new delivery_tag. argsrepr/kwargsrepr are recomputed
// from Args/Kwargs; custom headers in msg.Headers are kept (except
// "compression" and "redelivered", which describe the old delivery).
func EncodeTask(msg *TaskMessage, opts PublishOptions) ([]byte, error) {
	if msg == nil || msg.ID == "" || msg.Task == "" {
		return nil, errors.New("protocol: EncodeTask needs a message with ID and Task")
	}
	args, kwargs := msg.Args, msg.Kwargs
	if args == nil {
		args = []any{}
	}
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	nullStr := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var h object
	h.add("lang", "py")
	h.add("task", msg.Task)
	h.add("id", msg.ID)
	h.add("shadow", nullStr(msg.Shadow))
	if msg.ETA != nil {
		h.add("eta", pyfmt.FormatISO(*msg.ETA))
	} else {
		h.add("eta", nil)
	}
	switch {
	case msg.ExpiresRaw != "":
		if _, err := strconv.ParseFloat(msg.ExpiresRaw, 64); err == nil {
			h.addRaw("expires", json.RawMessage(msg.ExpiresRaw))
		} else {
			h.add("expires", msg.ExpiresRaw)
		}
	case msg.Expires != nil:
		h.add("expires", pyfmt.FormatISO(*msg.Expires))
	default:
		h.add("expires", nil)
	}
	h.add("group", nullStr(msg.Group))
	h.add("group_index", msg.GroupIndex)
	h.add("retries", msg.Retries)
	tl := [2]any{}
	for i, f := range msg.TimeLimit {
		if f != nil && !math.IsInf(*f, 0) && !math.IsNaN(*f) {
			tl[i] = json.Number(pyfmt.FormatFloat(*f))
		}
	}
	h.add("timelimit", tl)
	h.add("root_id", nullStr(msg.RootID))
	h.add("parent_id", nullStr(msg.ParentID))
	h.add("argsrepr", SafeReprArgs(args, DefaultReprMax))
	h.add("kwargsrepr", SafeRepr(kwargs, DefaultReprMax))
	origin := msg.Origin
	if origin == "" {
		origin = opts.Origin
	}
	h.add("origin", nullStr(origin))
	h.add("ignore_result", msg.IgnoreResult)
	if msg.Stamps != nil {
		if _, ok := msg.Headers["stamped_headers"]; !ok {
			keys := make([]string, 0, len(msg.Stamps))
			for k := range msg.Stamps {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			h.add("stamped_headers", keys)
		}
		h.add("stamps", msg.Stamps)
	}
	extra := map[string]json.RawMessage{}
	for k, v := range msg.Headers {
		if k == "compression" || k == "redelivered" {
			continue
		}
		extra[k] = v
	}
	for _, k := range coreHeaders {
		delete(extra, k)
	}
	h.addExtra(extra)
	headers, err := h.bytes()
	if err != nil {
		return nil, err
	}

	embed := map[string]any{"callbacks": nilIfEmpty(msg.Embed.Callbacks),
		"errbacks": nilIfEmpty(msg.Embed.Errbacks), "chain": nilIfEmpty(msg.Embed.Chain),
		"chord": nil}
	if msg.Embed.Chord != nil {
		embed["chord"] = msg.Embed.Chord
	}
	var e object
	e.add("callbacks", embed["callbacks"])
	e.add("errbacks", embed["errbacks"])
	e.add("chain", embed["chain"])
	e.add("chord", embed["chord"])
	eb, err := e.bytes()
	if err != nil {
		return nil, err
	}
	ab, err := marshalPy(args)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode args: %w", err)
	}
	kb, err := marshalPy(kwargs)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode kwargs: %w", err)
	}
	body := make([]byte, 0, len(ab)+len(kb)+len(eb)+8)
	body = append(body, '[')
	body = append(body, ab...)
	body = append(body, ", "...)
	body = append(body, kb...)
	body = append(body, ", "...)
	body = append(body, eb...)
	body = append(body, ']')

	rk := opts.RoutingKey
	if rk == "" {
		rk = opts.Queue
	}
	if rk == "" {
		rk = DefaultQueue
	}
	env := Envelope{
		Body:            base64Std(body),
		ContentEncoding: "utf-8",
		ContentType:     ContentTypeJSON,
		Headers:         nil,
		Properties: Properties{
			CorrelationID: msg.ID,
			ReplyTo:       opts.ReplyTo,
			DeliveryMode:  2,
			DeliveryInfo:  DeliveryInfo{Exchange: opts.Exchange, RoutingKey: rk},
			Priority:      min(max(opts.Priority, 0), 255),
			BodyEncoding:  "base64",
			DeliveryTag:   pyfmt.NewUUID4().String(),
		},
		BadHeaders: headers, // already ordered; MarshalJSON writes it verbatim
	}
	return env.MarshalJSON()
}

func nilIfEmpty(s []Signature) any {
	if len(s) == 0 {
		return nil
	}
	return s
}
