package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
)

// Canvas: what a worker sends when a task of a canvas finishes (celery's
// trace.py, canvas.py and backends/base.py behaviour, restated).
//
// A signature on the wire is the dict {"task", "args", "kwargs",
// "options", "subtask_type", "immutable"} (captured in
// protocol/testdata/canvas). ApplySignature turns one into the task
// messages Signature.apply_async would publish: a plain task, a chain
// (subtask_type "chain": the first task carries the rest, reversed, in its
// embed), a group (every member gets the group id and its index) or a chord
// (header members carry the body in embed.chord; the chord size is set
// before the last member is sent).

// ErrCanvasUnsupported is returned for a signature this worker cannot apply
// (an unknown subtask_type, a nested group inside a chain, ...).
var ErrCanvasUnsupported = errors.New("protocol: canvas signature not supported")

// Sig is the parsed view of a Signature.
type Sig struct {
	Task      string
	Args      []any
	Kwargs    map[string]any
	Options   map[string]any
	Type      string // "" for a plain task, "chain", "group", "chord"
	Immutable bool
}

// ParseSig reads a wire signature.
func ParseSig(s Signature) (*Sig, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: null signature", ErrCanvasUnsupported)
	}
	out := &Sig{Options: map[string]any{}, Kwargs: map[string]any{}}
	out.Task, _ = s["task"].(string)
	if a, ok := s["args"].([]any); ok {
		out.Args = a
	} else if s["args"] != nil {
		return nil, fmt.Errorf("%w: args of %q is not a list", ErrCanvasUnsupported, out.Task)
	}
	if k, ok := s["kwargs"].(map[string]any); ok {
		out.Kwargs = k
	}
	if o, ok := s["options"].(map[string]any); ok {
		out.Options = o
	}
	out.Type, _ = s["subtask_type"].(string)
	out.Immutable, _ = s["immutable"].(bool)
	if out.Type == "" && out.Task == "" {
		return nil, fmt.Errorf("%w: signature without a task name", ErrCanvasUnsupported)
	}
	return out, nil
}

// Signature returns the wire form of s.
func (s *Sig) Signature() Signature {
	var st any
	if s.Type != "" {
		st = s.Type
	}
	args := s.Args
	if args == nil {
		args = []any{}
	}
	kw := s.Kwargs
	if kw == nil {
		kw = map[string]any{}
	}
	opts := s.Options
	if opts == nil {
		opts = map[string]any{}
	}
	return Signature{"task": s.Task, "args": args, "kwargs": kw, "options": opts,
		"subtask_type": st, "immutable": s.Immutable}
}

// clone is a copy whose Options map may be changed.
func (s *Sig) clone() *Sig {
	c := *s
	c.Options = make(map[string]any, len(s.Options)+4)
	for k, v := range s.Options {
		c.Options[k] = v
	}
	return &c
}

// CanvasCall is the apply_async call the worker makes on a signature.
type CanvasCall struct {
	// Args are partial args prepended to the signature's own (not when
	// it is immutable), e.g. the parent's return value.
	Args []any
	// ParentID and RootID override the signature's options.
	ParentID, RootID string
	// Chain is the chain= option: the remaining chain, reversed.
	Chain []Signature
	// GroupID/GroupIndex make the message a group member (group.apply_async).
	GroupID    string
	GroupIndex *int
	// Priority, when set, overrides the signature's priority option
	// (task_inherit_parent_priority).
	Priority *int
	// DefaultQueue receives messages whose options name no queue or
	// routing key (celery's task_default_queue).
	DefaultQueue string
	// ReplyTo is used when the signature has no reply_to option.
	ReplyTo string
	// Origin is the origin header ("<pid>@<host>" or the node name).
	Origin string
	// Now is the time countdown and relative expires count from.
	Now time.Time
}

// Outgoing is one task message to publish.
type Outgoing struct {
	Msg *TaskMessage
	Pub PublishOptions
	// ChordSize, when set, must be stored (celery-taskset-meta-<gid>.s)
	// before this message is published (it is the chord's last header
	// part).
	ChordSize *ChordSize
	// Notes are options the worker could not honour (to be logged).
	Notes []string
}

// ChordSize is set_chord_size(group_id, size).
type ChordSize struct {
	GroupID string
	Size    int
}

// ApplySignature returns the messages Signature.apply_async publishes for s
// called with call.
func ApplySignature(s Signature, call CanvasCall) ([]Outgoing, error) {
	sig, err := ParseSig(s)
	if err != nil {
		return nil, err
	}
	return applySig(sig, call)
}

func applySig(sig *Sig, call CanvasCall) ([]Outgoing, error) {
	switch sig.Type {
	case "":
		o, err := taskMessage(sig, call)
		if err != nil {
			return nil, err
		}
		return []Outgoing{o}, nil
	case "chain":
		return applyChain(sig, call)
	case "group":
		return applyGroup(sig, call)
	case "chord":
		return applyChord(sig, call)
	}
	return nil, fmt.Errorf("%w: subtask_type %q", ErrCanvasUnsupported, sig.Type)
}

// subSigs reads kwargs[key] as a list of signatures (chain/group tasks).
func subSigs(sig *Sig, key string) ([]*Sig, error) {
	raw, _ := sig.Kwargs[key].([]any)
	if raw == nil {
		if one, ok := sig.Kwargs[key].(map[string]any); ok && key == "tasks" {
			// a group's tasks may be a single nested signature
			raw = []any{one}
		}
	}
	out := make([]*Sig, 0, len(raw))
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s %s[%d] is not a signature", ErrCanvasUnsupported, sig.Type, key, i)
		}
		s, err := ParseSig(m)
		if err != nil {
			return nil, err
		}
		out = append(out, s.clone())
	}
	return out, nil
}

// applyChain is chain.apply_async(args): every task gets a task id, the
// first receives the partial args and the rest (reversed) as its chain;
// the chain's link goes to the last task, its link_error to every task;
// group_id/group_index/chord (a chain inside a chord header) go to the last.
func applyChain(sig *Sig, call CanvasCall) ([]Outgoing, error) {
	tasks, err := subSigs(sig, "tasks")
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	for i, t := range tasks {
		if t.Type != "" && i > 0 {
			return nil, fmt.Errorf("%w: a %s inside a chain (only its first element may be complex)", ErrCanvasUnsupported, t.Type)
		}
		if _, ok := t.Options["task_id"].(string); !ok && t.Type == "" {
			t.Options["task_id"] = pyfmt.NewUUID4().String()
		}
		if le := sigList(sig.Options["link_error"]); len(le) > 0 {
			t.Options["link_error"] = append(sigList(t.Options["link_error"]), le...)
		}
	}
	last := tasks[len(tasks)-1]
	if id, ok := sig.Options["task_id"].(string); ok && id != "" {
		last.Options["task_id"] = id
	}
	if l := sigList(sig.Options["link"]); len(l) > 0 {
		last.Options["link"] = append(sigList(last.Options["link"]), l...)
	}
	for _, k := range []string{"chord", "group_id", "group_index"} {
		if v, ok := sig.Options[k]; ok && v != nil {
			last.Options[k] = v
		}
	}
	if call.GroupID != "" {
		last.Options["group_id"] = call.GroupID
		if call.GroupIndex != nil {
			last.Options["group_index"] = *call.GroupIndex
		}
	}
	for _, k := range []string{"queue", "routing_key", "exchange", "priority"} {
		if v, ok := sig.Options[k]; ok && v != nil {
			for _, t := range tasks {
				if _, set := t.Options[k]; !set {
					t.Options[k] = v
				}
			}
		}
	}
	rest := make([]Signature, 0, len(tasks)-1)
	for i := len(tasks) - 1; i >= 1; i-- {
		rest = append(rest, tasks[i].Signature())
	}
	first := call
	first.GroupID, first.GroupIndex = "", nil
	first.Chain = append(rest, call.Chain...)
	if len(first.Chain) == 0 {
		first.Chain = nil
	}
	if sig.Immutable {
		first.Args = nil
	}
	return applySig(tasks[0], first)
}

// applyGroup is group.apply_async(args): a new group id (unless the group
// was frozen with one), and every member applied with it and its index.
func applyGroup(sig *Sig, call CanvasCall) ([]Outgoing, error) {
	tasks, err := subSigs(sig, "tasks")
	if err != nil {
		return nil, err
	}
	gid, _ := sig.Options["task_id"].(string)
	if gid == "" {
		gid = pyfmt.NewUUID4().String()
	}
	var out []Outgoing
	for i, t := range tasks {
		msgs, err := applySig(t, memberCall(call, sig, gid, i))
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}

// applyChord is chord.apply_async(args): the partial args go to the
// header; the body is frozen with a task id; each header part carries the
// body in embed.chord; the chord size is stored before the last part.
func applyChord(sig *Sig, call CanvasCall) ([]Outgoing, error) {
	hm, _ := sig.Kwargs["header"].(map[string]any)
	bm, _ := sig.Kwargs["body"].(map[string]any)
	if hm == nil || bm == nil {
		return nil, fmt.Errorf("%w: chord without header or body", ErrCanvasUnsupported)
	}
	header, err := ParseSig(hm)
	if err != nil {
		return nil, err
	}
	body, err := ParseSig(bm)
	if err != nil {
		return nil, err
	}
	body = body.clone()
	if id, ok := sig.Options["task_id"].(string); ok && id != "" {
		body.Options["task_id"] = id
	}
	if _, ok := body.Options["task_id"].(string); !ok && body.Type == "" {
		body.Options["task_id"] = pyfmt.NewUUID4().String()
	}
	if l := sigList(sig.Options["link"]); len(l) > 0 {
		body.Options["link"] = append(sigList(body.Options["link"]), l...)
	}
	if l := sigList(sig.Options["link_error"]); len(l) > 0 {
		body.Options["link_error"] = append(sigList(body.Options["link_error"]), l...)
	}
	var parts []*Sig
	if header.Type == "group" {
		if parts, err = subSigs(header, "tasks"); err != nil {
			return nil, err
		}
	} else {
		parts = []*Sig{header.clone()}
	}
	gid, _ := header.Options["task_id"].(string)
	if gid == "" {
		gid = pyfmt.NewUUID4().String()
	}
	bodySig := body.Signature()
	var out []Outgoing
	for i, p := range parts {
		if p.Type != "" && p.Type != "chain" {
			return nil, fmt.Errorf("%w: a %s in a chord header", ErrCanvasUnsupported, p.Type)
		}
		p.Options["chord"] = bodySig
		msgs, err := applySig(p, memberCall(call, sig, gid, i))
		if err != nil {
			return nil, err
		}
		if i == len(parts)-1 && len(msgs) > 0 {
			msgs[0].ChordSize = &ChordSize{GroupID: gid, Size: len(parts)}
		}
		out = append(out, msgs...)
	}
	if len(parts) == 0 {
		// An empty header: celery calls the body with [] at once.
		c := call
		c.Args = []any{[]any{}}
		return applySig(body, c)
	}
	return out, nil
}

// sigList reads an option holding one signature or a list of them.
func sigList(v any) []any {
	switch x := v.(type) {
	case []any:
		return append([]any(nil), x...)
	case []Signature:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]any:
		return []any{x}
	}
	return nil
}

func toSigs(v any) []Signature {
	l := sigList(v)
	if len(l) == 0 {
		return nil
	}
	out := make([]Signature, 0, len(l))
	for _, x := range l {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// honouredOptions are the signature options taskMessage turns into the
// message; others are reported in Outgoing.Notes.
var honouredOptions = map[string]bool{
	"task_id": true, "queue": true, "routing_key": true, "exchange": true, "priority": true,
	"countdown": true, "eta": true, "expires": true, "time_limit": true, "soft_time_limit": true,
	"link": true, "link_error": true, "chain": true, "chord": true, "group_id": true,
	"group_index": true, "parent_id": true, "root_id": true, "shadow": true, "ignore_result": true,
	"reply_to": true, "retries": true, "stamped_headers": true, "stamps": true,
	"headers": true, "serializer": true, "content_type": true, "add_to_parent": true,
	"task_type": true, "result_cls": true, "replaced_task_nesting": true,
	"argsrepr": true, "kwargsrepr": true, "delivery_mode": true, "mandatory": true,
}

// memberCall is the call of member i of the group (or chord header) sig
// with id gid: the group id and index set, the parent's args dropped when
// sig is immutable.
func memberCall(call CanvasCall, sig *Sig, gid string, i int) CanvasCall {
	call.GroupID = gid
	call.GroupIndex = &i
	if sig.Immutable {
		call.Args = nil
	}
	return call
}

// taskMessage is Task.apply_async of a plain signature: args merged,
// options turned into headers, embed and routing.
func taskMessage(sig *Sig, call CanvasCall) (Outgoing, error) {
	o := sig.Options
	var out Outgoing
	args := append([]any(nil), sig.Args...)
	if len(call.Args) > 0 && !sig.Immutable {
		args = append(append([]any(nil), call.Args...), sig.Args...)
	}
	if args == nil {
		args = []any{}
	}
	kwargs := sig.Kwargs
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	id, _ := o["task_id"].(string)
	if id == "" {
		id = pyfmt.NewUUID4().String()
	}
	msg := &TaskMessage{Version: 2, ID: id, Task: sig.Task, Args: args, Kwargs: kwargs}
	msg.Shadow, _ = o["shadow"].(string)
	msg.IgnoreResult, _ = o["ignore_result"].(bool)
	msg.Group, _ = o["group_id"].(string)
	if n, ok := NumberInt(o["group_index"]); ok {
		msg.GroupIndex = &n
	}
	if call.GroupID != "" {
		msg.Group = call.GroupID
		msg.GroupIndex = call.GroupIndex
	}
	msg.ParentID, _ = o["parent_id"].(string)
	msg.RootID, _ = o["root_id"].(string)
	if call.ParentID != "" {
		msg.ParentID = call.ParentID
	}
	if call.RootID != "" {
		msg.RootID = call.RootID
	}
	if msg.RootID == "" {
		msg.RootID = id
	}
	now := call.Now
	if now.IsZero() {
		now = time.Now()
	}
	var err error
	if msg.ETA, err = optTime(o, "countdown", "eta", now, sig.Task); err != nil {
		return out, err
	}
	if msg.Expires, err = optTime(o, "expires", "expires", now, sig.Task); err != nil {
		return out, err
	}
	if f, ok := NumberFloat(o["time_limit"]); ok {
		msg.TimeLimit[0] = &f
	}
	if f, ok := NumberFloat(o["soft_time_limit"]); ok {
		msg.TimeLimit[1] = &f
	}
	msg.Embed.Callbacks = toSigs(o["link"])
	msg.Embed.Errbacks = toSigs(o["link_error"])
	msg.Embed.Chain = call.Chain
	if msg.Embed.Chain == nil {
		msg.Embed.Chain = toSigs(o["chain"])
	}
	if c, ok := o["chord"].(map[string]any); ok {
		msg.Embed.Chord = c
	}
	if sh, ok := o["stamped_headers"].([]any); ok && len(sh) > 0 {
		msg.Stamps = map[string]any{}
		for _, k := range sh {
			if ks, ok := k.(string); ok {
				msg.Stamps[ks] = o[ks]
			}
		}
	}
	if h, ok := o["headers"].(map[string]any); ok {
		msg.Headers = map[string]json.RawMessage{}
		for k, v := range h {
			if b, err := json.Marshal(v); err == nil {
				msg.Headers[k] = b
			}
		}
	}

	pub := PublishOptions{ReplyTo: call.ReplyTo, Origin: call.Origin}
	if rt, ok := o["reply_to"].(string); ok && rt != "" {
		pub.ReplyTo = rt
	}
	pub.Queue = optName(o["queue"])
	pub.RoutingKey, _ = o["routing_key"].(string)
	pub.Exchange = optName(o["exchange"])
	if pub.Queue == "" {
		pub.Queue = pub.RoutingKey
	}
	if pub.Queue == "" {
		pub.Queue = call.DefaultQueue
	}
	if pub.Queue == "" {
		pub.Queue = DefaultQueue
	}
	if pub.Exchange != "" && pub.Exchange != pub.Queue {
		out.Notes = append(out.Notes, fmt.Sprintf("exchange %q: routed straight to queue %q (only direct routing to a queue is supported)", pub.Exchange, pub.Queue))
	}
	pub.Exchange = ""
	pub.RoutingKey = pub.Queue
	if p, ok := NumberInt(o["priority"]); ok {
		pub.Priority = p
	}
	if call.Priority != nil {
		pub.Priority = *call.Priority
	}
	if ser, ok := o["serializer"].(string); ok && ser != "" && ser != "json" {
		out.Notes = append(out.Notes, fmt.Sprintf("serializer %q: sent as JSON", ser))
	}
	for k, v := range o {
		if !honouredOptions[k] && v != nil {
			out.Notes = append(out.Notes, fmt.Sprintf("option %q ignored", k))
		}
	}
	out.Msg, out.Pub = msg, pub
	return out, nil
}

// optName reads a queue/exchange option: a name or a {"name": ...} dict.
func optName(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		s, _ := x["name"].(string)
		return s
	}
	return ""
}

// optTime reads a time option as apply_async does: seconds from now in
// o[relKey] (countdown, expires), else an ISO 8601 string in o[absKey]
// (eta, expires). Neither present is a nil time.
func optTime(o map[string]any, relKey, absKey string, now time.Time, task string) (*time.Time, error) {
	if f, ok := NumberFloat(o[relKey]); ok {
		t := now.Add(time.Duration(f * float64(time.Second))).UTC()
		return &t, nil
	}
	s, ok := o[absKey].(string)
	if !ok || s == "" {
		return nil, nil
	}
	t, err := ParseISO(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q of %s: %w", ErrCanvasUnsupported, absKey, s, task, err)
	}
	return &t, nil
}

// ChordError is celery.exceptions.ChordError with the message the Redis
// backend raises for a failed header part: "Dependency <id> raised <repr>".
func ChordError(partID string, exc *ExceptionInfo) *ExceptionInfo {
	return NewExceptionInfo("ChordError", ModuleCelery,
		fmt.Sprintf("Dependency %s raised %s", partID, PyReprException(exc)))
}

// ChordPartEntry encodes one header result as the Redis backend stores it
// in the group's .j key: [1, task_id, state, result].
func ChordPartEntry(taskID, state string, result any) ([]byte, error) {
	var r any
	if e, ok := result.(*ExceptionInfo); ok && e != nil {
		r = *e
	} else {
		r = pyJSONValue(result)
	}
	rb, err := marshalPy(r)
	if err != nil {
		return nil, err
	}
	ib, _ := marshalPy(taskID)
	sb, _ := marshalPy(state)
	// Python's json.dumps separators at the top level: [1, "id", "STATE", result]
	out := make([]byte, 0, len(rb)+len(ib)+len(sb)+12)
	out = append(out, "[1, "...)
	out = append(out, ib...)
	out = append(out, ", "...)
	out = append(out, sb...)
	out = append(out, ", "...)
	out = append(out, rb...)
	return append(out, ']'), nil
}

// ChordPart is a decoded .j entry.
type ChordPart struct {
	TaskID string
	State  string
	Result json.RawMessage
}

// DecodeChordPart reads one .j entry.
func DecodeChordPart(b []byte) (ChordPart, error) {
	var l []json.RawMessage
	if err := json.Unmarshal(b, &l); err != nil || len(l) != 4 {
		return ChordPart{}, fmt.Errorf("protocol: chord entry is not [1, id, state, result]: %q", clip(b))
	}
	var p ChordPart
	if json.Unmarshal(l[1], &p.TaskID) != nil || json.Unmarshal(l[2], &p.State) != nil {
		return ChordPart{}, fmt.Errorf("protocol: chord entry has a bad id or state: %q", clip(b))
	}
	p.Result = l[3]
	return p, nil
}

// ChordJoin is the outcome of recording one chord header part.
type ChordJoin struct {
	// Complete is true for the one call that completed the chord; Parts
	// then holds every header result in header order.
	Complete bool
	Parts    []ChordPart
	// Ready and Total are the counts seen (Total -1: no chord size yet).
	Ready, Total int
}

// ChordResults turns the joined entries (in header order) into the body's
// argument, or the ChordError of the first part that failed (celery's
// _unpack_chord_result).
func ChordResults(parts []ChordPart) ([]any, *ExceptionInfo) {
	out := make([]any, 0, len(parts))
	for _, p := range parts {
		if IsPropagate(p.State) {
			var e ExceptionInfo
			if err := e.UnmarshalJSON(p.Result); err != nil {
				e = *NewExceptionInfo("Exception", ModuleBuiltins, string(p.Result))
			}
			return nil, ChordError(p.TaskID, &e)
		}
		var v any
		if err := unmarshalNumber(p.Result, &v); err != nil {
			return nil, NewExceptionInfo("ChordError", ModuleCelery, "Join error: undecodable result of "+p.TaskID)
		}
		out = append(out, v)
	}
	return out, nil
}

// SigListOption reads a link/link_error option (one signature or a list).
func SigListOption(v any) []Signature { return toSigs(v) }

// SignatureTaskIDs returns the task ids frozen into sig (its own task_id,
// and for a chain, group or chord the ids of its parts), the results a
// client may be waiting on.
func SignatureTaskIDs(s Signature) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if o, ok := m["options"].(map[string]any); ok {
			if id, _ := o["task_id"].(string); id != "" {
				out = append(out, id)
			}
		}
		kw, _ := m["kwargs"].(map[string]any)
		switch st, _ := m["subtask_type"].(string); st {
		case "chain", "group":
			if l, ok := kw["tasks"].([]any); ok {
				for _, t := range l {
					walk(t)
				}
			}
		case "chord":
			walk(kw["header"])
			walk(kw["body"])
		}
	}
	walk(s)
	return out
}
