package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
	"github.com/omicsomics/omics-worker/worker"
)

type handlerFunc func(ctx context.Context, s *Server, args map[string]any) (any, error)

// handler is one remote-control command with its Python signature:
// required lists the parameters without default (a missing one is
// Python's TypeError), strict handlers take no **kwargs (an unknown
// keyword is a TypeError) and accept only allowed.
type handler struct {
	fn       handlerFunc
	required []string
	strict   bool
	allowed  []string
}

func (h handler) check(method string, args map[string]any) error {
	var missing []string
	for _, r := range h.required {
		if _, ok := args[r]; !ok {
			missing = append(missing, "'"+r+"'")
		}
	}
	if len(missing) > 0 {
		noun := "argument"
		if len(missing) > 1 {
			noun = "arguments"
		}
		list := strings.Join(missing, ", ")
		if len(missing) > 1 {
			list = strings.Join(missing[:len(missing)-1], ", ") + " and " + missing[len(missing)-1]
		}
		return fmt.Errorf("TypeError(%s)", protocol.PyRepr(fmt.Sprintf("%s() missing %d required positional %s: %s",
			method, len(missing), noun, list)))
	}
	if h.strict {
		keys := make([]string, 0, len(args))
		for k := range args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !slices.Contains(h.allowed, k) {
				return fmt.Errorf("TypeError(%s)", protocol.PyRepr(fmt.Sprintf("%s() got an unexpected keyword argument '%s'", method, k)))
			}
		}
	}
	return nil
}

// handlers maps method names (and Celery's aliases) to commands.
var handlers = map[string]handler{}

func init() {
	reg := func(h handler, names ...string) {
		for _, n := range names {
			handlers[n] = h
		}
	}
	// inspect
	reg(handler{fn: hPing}, "ping")
	reg(handler{fn: hClock}, "clock")
	reg(handler{fn: hReport}, "report")
	reg(handler{fn: hConf}, "conf", "dump_conf")
	reg(handler{fn: hStats}, "stats")
	reg(handler{fn: hActive}, "active", "dump_active")
	reg(handler{fn: hReserved}, "reserved", "dump_reserved")
	reg(handler{fn: hScheduled}, "scheduled", "dump_schedule")
	reg(handler{fn: hRevoked}, "revoked", "dump_revoked")
	reg(handler{fn: hRegistered}, "registered", "dump_tasks")
	reg(handler{fn: hActiveQueues, strict: true}, "active_queues")
	reg(handler{fn: hQueryTask, required: []string{"ids"}}, "query_task")
	reg(handler{fn: hHello, required: []string{"from_node"}}, "hello")
	reg(handler{fn: hUnsupported("objgraph"), strict: true, allowed: []string{"num", "max_depth", "type"}}, "objgraph")
	reg(handler{fn: hUnsupported("memsample")}, "memsample")
	reg(handler{fn: hUnsupported("memdump")}, "memdump")
	// control
	reg(handler{fn: hRevoke, required: []string{"task_id"}}, "revoke")
	reg(handler{fn: hTerminate, required: []string{"signal", "task_id"}}, "terminate")
	reg(handler{fn: hRevokeByStampedHeaders, required: []string{"headers"}}, "revoke_by_stamped_headers")
	reg(handler{fn: hShutdown}, "shutdown")
	reg(handler{fn: hAddConsumer, required: []string{"queue"}}, "add_consumer")
	reg(handler{fn: hCancelConsumer, required: []string{"queue"}}, "cancel_consumer")
	reg(handler{fn: hEnableEvents, strict: true}, "enable_events")
	reg(handler{fn: hDisableEvents, strict: true}, "disable_events")
	reg(handler{fn: hHeartbeat, strict: true}, "heartbeat")
	reg(handler{fn: hRateLimit, required: []string{"task_name", "rate_limit"}}, "rate_limit")
	reg(handler{fn: hTimeLimit}, "time_limit")
	reg(handler{fn: hPoolGrow}, "pool_grow")
	reg(handler{fn: hPoolShrink}, "pool_shrink")
	reg(handler{fn: hPoolRestart}, "pool_restart")
	reg(handler{fn: hAutoscale, strict: true, allowed: []string{"max", "min"}}, "autoscale")
	reg(handler{fn: hElection, required: []string{"id", "topic"}}, "election")
}

// Commands lists the supported method names (aliases included), sorted.
func Commands() []string {
	out := make([]string, 0, len(handlers))
	for k := range handlers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// --- argument helpers ----------------------------------------------------

// stringList is Celery's maybe_list for ids: a string, a list of strings,
// or null.
func stringList(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			switch s := e.(type) {
			case string:
				out = append(out, s)
			case nil:
			default:
				out = append(out, protocol.PyRepr(s))
			}
		}
		return out
	}
	return []string{protocol.PyRepr(v)}
}

// number reads a JSON number, or a string holding one (spaces trimmed).
func number(v any) (float64, bool) {
	if s, ok := v.(string); ok {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil
	}
	return protocol.NumberFloat(v)
}

func seconds(v any) (time.Duration, error) {
	if v == nil {
		return 0, nil
	}
	f, ok := number(v)
	if !ok || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, &pyExc{"ValueError", fmt.Sprintf("invalid time limit %s", protocol.PyRepr(v))}
	}
	return time.Duration(f * float64(time.Second)), nil
}

func intArg(args map[string]any, name string, def int) (int, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return def, nil
	}
	f, ok := number(v)
	if !ok || f != math.Trunc(f) {
		return 0, &pyExc{"ValueError", fmt.Sprintf("invalid literal for int() with base 10: %s", protocol.PyRepr(v))}
	}
	return int(f), nil
}

// signals are the SIG* names of Python's signal module on Linux.
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
	"TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
	"IO": 29, "POLL": 29, "PWR": 30, "SYS": 31, "RTMIN": 34, "RTMAX": 64,
}

// signum is celery.platforms.signals.signum (5.2 and 5.5 alike): an
// integer is taken as is; otherwise an upper-case name ("TERM",
// "SIGKILL"); null means SIGTERM (the callers' `signal or TERM`).
func signum(v any) (int, error) {
	if v == nil {
		return 15, nil
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return int(i), nil
		}
	}
	if i, ok := v.(int); ok {
		return i, nil
	}
	s, ok := v.(string)
	if !ok || s == "" || strings.ToUpper(s) != s || strings.ToLower(s) == s {
		return 0, &pyExc{"TypeError", "signal name must be uppercase string."}
	}
	name := strings.TrimPrefix(s, "SIG")
	n, ok := signals[name]
	if !ok {
		return 0, &pyExc{"AttributeError", fmt.Sprintf("module 'signal' has no attribute 'SIG%s'", name)}
	}
	return n, nil
}

// --- inspect -------------------------------------------------------------

func hPing(context.Context, *Server, map[string]any) (any, error) { return ok("pong"), nil }

func hClock(_ context.Context, s *Server, _ map[string]any) (any, error) {
	return map[string]any{"clock": s.w.Clock().Value()}, nil
}

func hReport(_ context.Context, s *Server, _ map[string]any) (any, error) {
	return ok(s.cfg.Report), nil
}

func hConf(_ context.Context, s *Server, args map[string]any) (any, error) {
	return confReply(s.cfg.Conf, args), nil
}

func hStats(_ context.Context, s *Server, _ map[string]any) (any, error) {
	return s.stats(), nil
}

func infos(l []worker.RequestInfo, safe bool) []any {
	out := make([]any, 0, len(l))
	for _, r := range l {
		out = append(out, r.Map(safe))
	}
	return out
}

func hActive(_ context.Context, s *Server, args map[string]any) (any, error) {
	active, _, _ := s.w.Requests()
	return infos(active, pyfmt.Truthy(args["safe"])), nil
}

func hReserved(_ context.Context, s *Server, _ map[string]any) (any, error) {
	_, reserved, _ := s.w.Requests()
	return infos(reserved, false), nil
}

func hScheduled(_ context.Context, s *Server, _ map[string]any) (any, error) {
	_, _, scheduled := s.w.Requests()
	out := make([]any, 0, len(scheduled))
	for _, r := range scheduled {
		var eta any
		if r.ETA != nil {
			eta = pyfmt.FormatISO(r.ETA.UTC())
		}
		out = append(out, map[string]any{"eta": eta, "priority": 6, "request": r.Map(false)})
	}
	return out, nil
}

func hRevoked(_ context.Context, s *Server, _ map[string]any) (any, error) {
	ids := s.w.Revoked().IDs()
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out, nil
}

var defaultTaskInfoItems = []string{"exchange", "routing_key", "rate_limit"}

func hRegistered(_ context.Context, s *Server, args map[string]any) (any, error) {
	items := stringList(args["taskinfoitems"])
	if len(items) == 0 {
		items = defaultTaskInfoItems
	}
	var out []any
	for _, t := range s.w.Tasks() {
		var fields []string
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it] {
				continue
			}
			seen[it] = true
			var val string
			switch it {
			case "rate_limit":
				val = t.RateLimit
			case "time_limit":
				if t.TimeLimit > 0 {
					val = pyfmt.FormatFloat(t.TimeLimit.Seconds())
				}
			case "soft_time_limit":
				if t.SoftTimeLimit > 0 {
					val = pyfmt.FormatFloat(t.SoftTimeLimit.Seconds())
				}
			case "name":
				val = t.Name
			}
			if val != "" {
				fields = append(fields, it+"="+val)
			}
		}
		if len(fields) > 0 {
			out = append(out, fmt.Sprintf("%s [%s]", t.Name, strings.Join(fields, " ")))
		} else {
			out = append(out, t.Name)
		}
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// QueueInfo is kombu's Queue.as_dict(recurse=True) for a queue consumed
// through its own direct exchange (spec §4.5.4).
func QueueInfo(name string) map[string]any {
	return map[string]any{
		"name": name,
		"exchange": map[string]any{
			"name": name, "type": "direct", "arguments": nil, "durable": true,
			"passive": false, "auto_delete": false, "delivery_mode": nil, "no_declare": false,
		},
		"routing_key": name, "queue_arguments": nil, "binding_arguments": nil,
		"consumer_arguments": nil, "durable": true, "exclusive": false, "auto_delete": false,
		"no_ack": false, "alias": nil, "bindings": []any{}, "no_declare": nil, "expires": nil,
		"message_ttl": nil, "max_length": nil, "max_length_bytes": nil, "max_priority": nil,
	}
}

func hActiveQueues(_ context.Context, s *Server, _ map[string]any) (any, error) {
	qs := s.w.Queues()
	out := make([]any, 0, len(qs))
	for _, q := range qs {
		out = append(out, QueueInfo(q))
	}
	return out, nil
}

func hQueryTask(_ context.Context, s *Server, args map[string]any) (any, error) {
	ids := stringList(args["ids"])
	active, reserved, _ := s.w.Requests()
	out := map[string]any{}
	for _, l := range []struct {
		state string
		reqs  []worker.RequestInfo
	}{{"active", active}, {"reserved", reserved}} {
		for _, r := range l.reqs {
			if slices.Contains(ids, r.ID) {
				if _, dup := out[r.ID]; !dup {
					out[r.ID] = []any{l.state, r.Map(false)}
				}
			}
		}
	}
	return out, nil
}

// hHello answers a starting worker's mingle: merge its revoked ids, reply
// with ours and our clock; null for our own hello.
func hHello(_ context.Context, s *Server, args map[string]any) (any, error) {
	from, _ := args["from_node"].(string)
	if from == s.node {
		return nil, nil
	}
	s.log.Info("sync with " + from)
	if rv, ok := args["revoked"].(map[string]any); ok && len(rv) > 0 {
		entries, err := parseRevokedDict(rv)
		if err != nil {
			return nil, err
		}
		s.w.Revoked().Merge(entries)
		if s.cfg.OnRevoke != nil {
			s.cfg.OnRevoke()
		}
	}
	return map[string]any{"revoked": revokedDict(s.w.Revoked()), "clock": s.w.Clock().Forward()}, nil
}

// parseRevokedDict reads a mingle revoked dict: {id: [ts, id]} or {id: ts}.
// Python insists on float timestamps; we accept any number.
func parseRevokedDict(rv map[string]any) (map[string]float64, error) {
	out := make(map[string]float64, len(rv))
	for id, v := range rv {
		if l, ok := v.([]any); ok && len(l) > 0 {
			v = l[0]
		}
		f, ok := number(v)
		if _, isStr := v.(string); !ok || isStr {
			return nil, &pyExc{"ValueError", fmt.Sprintf("Expecting float timestamp, got type %s with value: %v", pyType(v), v)}
		}
		out[id] = f
	}
	return out, nil
}

func pyType(v any) string {
	switch v.(type) {
	case nil:
		return "<class 'NoneType'>"
	case string:
		return "<class 'str'>"
	case bool:
		return "<class 'bool'>"
	case []any:
		return "<class 'list'>"
	case map[string]any:
		return "<class 'dict'>"
	}
	return "<class 'float'>"
}

// revokedDict is the LimitedSet's _data as a Python worker sends it:
// {id: [float ts, id]}.
func revokedDict(rs *worker.RevokedSet) map[string]any {
	snap := rs.Snapshot()
	out := make(map[string]any, len(snap))
	for id, ts := range snap {
		out[id] = []any{ts, id} // float64 → always written with a fraction
	}
	return out
}

func hUnsupported(name string) handlerFunc {
	return func(context.Context, *Server, map[string]any) (any, error) {
		return nok(name + " is not supported by omics-worker (a Go worker)"), nil
	}
}

// --- control -------------------------------------------------------------

func (s *Server) revoke(ids []string, terminate bool, sig any) (any, error) {
	// de-duplicate, keep order (Python uses a set)
	var uniq []string
	for _, id := range ids {
		if !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	n := 15
	if terminate {
		var err error
		if n, err = signum(sig); err != nil {
			// celery adds the ids before it reads the signal
			s.w.Revoke(uniq, false, 0)
			if s.cfg.OnRevoke != nil {
				s.cfg.OnRevoke()
			}
			return nil, err
		}
	}
	terminated := s.w.Revoke(uniq, terminate, n)
	if s.cfg.OnRevoke != nil {
		s.cfg.OnRevoke()
	}
	if terminate {
		for _, id := range terminated {
			s.log.Info(fmt.Sprintf("Terminating %s (%d)", id, n))
		}
		if len(terminated) == 0 {
			return ok("terminate: tasks unknown"), nil
		}
		return ok("terminate: " + strings.Join(terminated, ", ")), nil
	}
	idstr := strings.Join(uniq, ", ")
	s.log.Info("Tasks flagged as revoked: " + idstr)
	// celery 5.2.6 wording (5.3+ prints the ids as a Python set)
	return ok("tasks " + idstr + " flagged as revoked"), nil
}

func hRevoke(_ context.Context, s *Server, args map[string]any) (any, error) {
	return s.revoke(stringList(args["task_id"]), pyfmt.Truthy(args["terminate"]), args["signal"])
}

func hTerminate(_ context.Context, s *Server, args map[string]any) (any, error) {
	return s.revoke(stringList(args["task_id"]), true, args["signal"])
}

func hShutdown(_ context.Context, s *Server, args map[string]any) (any, error) {
	msg, _ := args["msg"].(string)
	if msg == "" {
		msg = "Got shutdown from remote"
	}
	s.log.Warn(msg)
	if s.cfg.Shutdown != nil {
		s.cfg.Shutdown()
	}
	return nil, errNoReply
}

func hAddConsumer(ctx context.Context, s *Server, args map[string]any) (any, error) {
	q, _ := args["queue"].(string)
	if q == "" {
		return nil, &pyExc{"ValueError", "add_consumer: queue must be a non-empty string"}
	}
	if err := s.w.AddQueue(ctx, q); err != nil {
		return nil, err
	}
	ex, _ := args["exchange"].(string)
	rk, _ := args["routing_key"].(string)
	if rk == "" {
		rk = q
	}
	if ex != "" && ex != q {
		if err := s.mb.AddBinding(ctx, ex, s.cfg.Names.BindingMember(rk, "", q)); err != nil {
			s.log.Warn("add_consumer: binding failed", "exchange", ex, "err", err)
		}
	}
	return ok("add consumer " + q), nil
}

func hCancelConsumer(_ context.Context, s *Server, args map[string]any) (any, error) {
	q := fmt.Sprint(args["queue"])
	if qs, isStr := args["queue"].(string); isStr {
		q = qs
	}
	s.w.CancelQueue(q)
	return ok("no longer consuming from " + q), nil
}

func hEnableEvents(_ context.Context, s *Server, _ map[string]any) (any, error) {
	if s.ev != nil && s.ev.EnableTaskEvents() {
		s.log.Info("Events of group {task} enabled by remote.")
		return ok("task events enabled"), nil
	}
	return ok("task events already enabled"), nil
}

func hDisableEvents(_ context.Context, s *Server, _ map[string]any) (any, error) {
	if s.ev != nil && s.ev.DisableTaskEvents() {
		s.log.Info("Events of group {task} disabled by remote.")
		return ok("task events disabled"), nil
	}
	return ok("task events already disabled"), nil
}

func hHeartbeat(_ context.Context, s *Server, _ map[string]any) (any, error) {
	s.log.Debug("Heartbeat requested by remote.")
	if s.ev != nil {
		s.ev.HeartbeatNow()
	}
	return nil, nil
}

func hRateLimit(_ context.Context, s *Server, args map[string]any) (any, error) {
	task, _ := args["task_name"].(string)
	value := args["rate_limit"]
	enabled, err := s.w.SetRateLimit(task, value)
	var re *worker.RateError
	switch {
	case errors.As(err, &re):
		if re.PyType == "KeyError" { // celery lets this one escape
			return nil, &pyExc{"KeyError", re.Msg}
		}
		return nok("Invalid rate limit string: " + re.Repr()), nil
	case errors.Is(err, worker.ErrUnknownTask):
		s.log.Error("Rate limit attempt for unknown task " + task)
		return nok("unknown task"), nil
	case err != nil:
		return nil, err
	}
	if !enabled {
		s.log.Info("Rate limits disabled for tasks of type " + task)
		return ok("rate limit disabled successfully"), nil
	}
	s.log.Info(fmt.Sprintf("New rate limit for tasks of type %s: %v.", task, value))
	return ok("new rate limit set successfully"), nil
}

func hTimeLimit(_ context.Context, s *Server, args map[string]any) (any, error) {
	task, _ := args["task_name"].(string)
	soft, err := seconds(args["soft"])
	if err != nil {
		return nil, err
	}
	hard, err := seconds(args["hard"])
	if err != nil {
		return nil, err
	}
	if err := s.w.SetTimeLimits(task, soft, hard); err != nil {
		s.log.Error("Change time limit attempt for unknown task " + task)
		return nok("unknown task"), nil
	}
	s.log.Info(fmt.Sprintf("New time limits for tasks of type %s: soft=%v hard=%v", task, args["soft"], args["hard"]))
	return ok("time limits set successfully"), nil
}

func hPoolGrow(_ context.Context, s *Server, args map[string]any) (any, error) {
	n, err := intArg(args, "n", 1)
	if err != nil {
		return nil, err
	}
	if err := s.w.PoolGrow(n); err != nil {
		return nil, &pyExc{"RuntimeError", err.Error()}
	}
	return ok("pool will grow"), nil
}

func hPoolShrink(_ context.Context, s *Server, args map[string]any) (any, error) {
	n, err := intArg(args, "n", 1)
	if err != nil {
		return nil, err
	}
	if err := s.w.PoolShrink(n); err != nil {
		return nil, &pyExc{"ValueError", err.Error()}
	}
	return ok("pool will shrink"), nil
}

func hPoolRestart(context.Context, *Server, map[string]any) (any, error) {
	return nil, &pyExc{"ValueError", "Pool restarts not enabled"}
}

func hAutoscale(context.Context, *Server, map[string]any) (any, error) {
	return nil, &pyExc{"ValueError", "Autoscale not enabled"}
}

func hElection(context.Context, *Server, map[string]any) (any, error) { return nil, nil }
