package control

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/omicsomics/omics-worker/internal/pyfmt"
	"github.com/omicsomics/omics-worker/protocol"
)

// PoolImplementation is the stats.pool.implementation we report.
const PoolImplementation = "omics_worker:GoroutinePool"

// stats builds the `inspect stats` reply (spec §4.5.2) with our numbers:
// a prefork-like pool shape (every slot runs in this one process).
func (s *Server) stats() map[string]any {
	st := s.w.Stats()
	total := make(map[string]any, len(st.Total))
	for k, v := range st.Total {
		total[k] = v
	}
	broker := s.cfg.BrokerInfo
	if broker == nil {
		broker = map[string]any{}
	}
	return map[string]any{
		"total":  total,
		"pid":    st.Pid,
		"clock":  fmt.Sprint(s.w.Clock().Value()),
		"uptime": int64(st.Uptime.Round(time.Second) / time.Second),
		"pool": map[string]any{
			"implementation":           PoolImplementation,
			"max-concurrency":          st.Concurrency,
			"processes":                []any{st.Pid},
			"threads":                  st.Concurrency,
			"max-tasks-per-child":      "N/A",
			"put-guarded-by-semaphore": false,
			"timeouts":                 []any{st.SoftTimeLimit.Seconds(), st.TimeLimit.Seconds()},
		},
		"broker":         broker,
		"prefetch_count": st.PrefetchCount,
		"rusage":         Rusage(),
	}
}

// Rusage is Python's resource.getrusage(RUSAGE_SELF) dict ("N/A" when
// unavailable).
func Rusage() any {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "N/A"
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return map[string]any{
		"utime": tv(ru.Utime), "stime": tv(ru.Stime), "maxrss": ru.Maxrss,
		"ixrss": ru.Ixrss, "idrss": ru.Idrss, "isrss": ru.Isrss,
		"minflt": ru.Minflt, "majflt": ru.Majflt, "nswap": ru.Nswap,
		"inblock": ru.Inblock, "oublock": ru.Oublock, "msgsnd": ru.Msgsnd,
		"msgrcv": ru.Msgrcv, "nsignals": ru.Nsignals, "nvcsw": ru.Nvcsw, "nivcsw": ru.Nivcsw,
	}
}

// Mingle sends the start-up `hello` broadcast (spec §4.7): our revoked
// ids go out, every other node's revoked ids and clock come back and are
// merged. It returns the nodes that replied. Errors are I/O failures; a
// lonely worker ("all alone") is not an error.
func (s *Server) Mingle(ctx context.Context) ([]string, error) {
	oid := pyfmt.NewUUID4().String()
	queue := protocol.ReplyQueue(oid)
	member := s.cfg.Names.BindingMember(oid, "", queue)
	if err := s.mb.AddBinding(ctx, protocol.ReplyExchange, member); err != nil {
		return nil, fmt.Errorf("mingle: bind reply queue: %w", err)
	}
	defer func() {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.mb.RemoveBinding(c, protocol.ReplyExchange, member)
		_ = s.mb.DeleteQueue(c, queue)
	}()
	s.log.Info("mingle: searching for neighbors")
	ticket := pyfmt.NewUUID4().String()
	req := &protocol.ControlRequest{
		Method:    "hello",
		Arguments: map[string]any{"from_node": s.node, "revoked": revokedDict(s.w.Revoked())},
		Ticket:    ticket,
		ReplyTo:   &protocol.ReplyTo{Exchange: protocol.ReplyExchange, RoutingKey: oid},
		Clock:     s.w.Clock().Forward(),
		Expires:   float64(time.Now().Add(s.cfg.MingleTimeout).UnixMicro()) / 1e6,
	}
	env, err := protocol.EncodeControlRequest(req)
	if err != nil {
		return nil, fmt.Errorf("mingle: %w", err)
	}
	if err := s.mb.PublishFanout(ctx, s.cfg.Names.PidboxChannel(), env); err != nil {
		return nil, fmt.Errorf("mingle: publish hello: %w", err)
	}
	var nodes []string
	for {
		raw, err := s.mb.PopReply(ctx, queue, s.cfg.MingleTimeout)
		if err != nil {
			return nodes, fmt.Errorf("mingle: wait for replies: %w", err)
		}
		if raw == nil {
			break
		}
		e, err := protocol.DecodeEnvelope(raw)
		if err != nil {
			continue
		}
		node, value, tk, err := protocol.DecodeControlReply(e)
		if err != nil || (tk != "" && tk != ticket) || node == s.node {
			continue
		}
		m, _ := value.(map[string]any)
		if m == nil {
			continue
		}
		nodes = append(nodes, node)
		s.log.Debug("mingle: processing reply from " + node)
		if c, ok := number(m["clock"]); ok {
			s.w.Clock().Adjust(int64(c))
		} else {
			s.w.Clock().Forward()
		}
		if rv, ok := m["revoked"].(map[string]any); ok && len(rv) > 0 {
			entries, err := parseRevokedDict(rv)
			if err != nil {
				s.log.Error(fmt.Sprintf("mingle: sync with %s failed: %v", node, err))
				continue
			}
			s.w.Revoked().Merge(entries)
		}
	}
	if len(nodes) == 0 {
		s.log.Info("mingle: all alone")
	} else {
		s.log.Info(fmt.Sprintf("mingle: sync with %d nodes", len(nodes)))
		if s.cfg.OnRevoke != nil {
			s.cfg.OnRevoke()
		}
		s.log.Info("mingle: sync complete")
	}
	return nodes, nil
}
