package worker

// Revocation by stamped headers (celery ≥ 5.3 `revoke_by_stamped_headers`,
// worker/control.py and Request.revoked() of celery 5.5): the revoked
// stamps are kept in memory only, like celery's worker_state.revoked_stamps
// (neither the statedb nor mingle carries them in celery 5.5).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/omicsomics/omics-worker/protocol"
)

// Stamp is one stamp name with its value(s), in the order given.
type Stamp struct {
	Name  string
	Value any
}

// RevokedStamps is celery's worker_state.revoked_stamps: stamp name →
// list of revoked values, names in insertion order.
type RevokedStamps struct {
	mu     sync.Mutex
	names  []string
	values map[string][]any
}

// Add appends the values of each stamp (a list adds its elements), as
// celery: revoked_stamps[h] = maybe_list(old or []) + list(maybe_list(v)).
func (r *RevokedStamps) Add(stamps []Stamp) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.values == nil {
		r.values = map[string][]any{}
	}
	for _, s := range stamps {
		if _, ok := r.values[s.Name]; !ok {
			r.names = append(r.names, s.Name)
		}
		switch v := s.Value.(type) {
		case []any:
			r.values[s.Name] = append(r.values[s.Name], v...)
		case nil:
			r.values[s.Name] = append(r.values[s.Name], []any{}...)
		default:
			r.values[s.Name] = append(r.values[s.Name], v)
		}
	}
}

// Snapshot returns the revoked stamps in insertion order.
func (r *RevokedStamps) Snapshot() []Stamp {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Stamp, 0, len(r.names))
	for _, n := range r.names {
		out = append(out, Stamp{Name: n, Value: slices.Clone(r.values[n])})
	}
	return out
}

// Match returns the first stamp of msg whose value is revoked (celery's
// Request.revoked(): a list stamp matches by any element). Unlike celery
// 5.5, which looks only at the first of the message's stamp names that
// has revoked values, every name is checked (documented difference).
func (r *RevokedStamps) Match(msg *protocol.TaskMessage) (Stamp, bool) {
	names := msg.StampedHeaders()
	if len(names) == 0 {
		return Stamp{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range names {
		revoked, ok := r.values[n]
		if !ok {
			continue
		}
		v := msg.Stamps[n]
		if l, isList := v.([]any); isList {
			for _, e := range l {
				if protocol.StampMatches(e, revoked) {
					return Stamp{Name: n, Value: e}, true
				}
			}
			continue
		}
		if protocol.StampMatches(v, revoked) {
			return Stamp{Name: n, Value: v}, true
		}
	}
	return Stamp{}, false
}

// RevokedStamps returns the worker's revoked stamps.
func (w *Worker) RevokedStamps() *RevokedStamps { return &w.mon.revokedStamps }

// RevokeStamps is celery 5.5's revoke_by_stamped_headers: the stamps are
// added to the revoked stamps (reserved and later messages carrying one
// are discarded as REVOKED when they come up); with terminate, running
// tasks with a matching stamp are terminated with signum. It returns, for
// terminate, the matching values per stamp name (celery's
// terminated_scheme_to_stamps_mapping), names in order of first match.
func (w *Worker) RevokeStamps(stamps []Stamp, terminate bool, signum int) []Stamp {
	w.mon.revokedStamps.Add(stamps)
	if !terminate {
		return nil
	}
	var out []Stamp
	add := func(name string, vals []any) {
		for i := range out {
			if out[i].Name == name {
				l := out[i].Value.([]any)
				for _, v := range vals {
					if !slices.ContainsFunc(l, func(e any) bool { return protocol.StampMatches(e, v) }) {
						l = append(l, v)
					}
				}
				out[i].Value = l
				return
			}
		}
		out = append(out, Stamp{Name: name, Value: slices.Clone(vals)})
	}
	type hit struct {
		id     string
		cancel context.CancelCauseFunc
	}
	var hits []hit
	w.mu.Lock()
	jobs := make([]*job, 0, len(w.running))
	for j := range w.running {
		jobs = append(jobs, j)
	}
	slices.SortFunc(jobs, func(a, b *job) int { return strings.Compare(jobID(a), jobID(b)) })
	for _, j := range jobs {
		if j.msg == nil {
			continue
		}
		own := j.msg.StampValues()
		matched := false
		for _, s := range stamps {
			v, ok := own[s.Name]
			if !ok {
				continue
			}
			if m := protocol.MatchingStamps(v, s.Value); len(m) > 0 {
				add(s.Name, m)
				matched = true
			}
		}
		if matched {
			hits = append(hits, hit{j.msg.ID, j.cancel})
		}
	}
	w.mu.Unlock()
	x := &w.mon
	x.mu.Lock()
	for _, h := range hits {
		x.terminate[h.id] = signum
	}
	x.mu.Unlock()
	for _, h := range hits {
		w.log.Info(fmt.Sprintf("Terminating %s (%d)", h.id, signum), "reason", "revoked by stamped header")
		if h.cancel != nil {
			h.cancel(ErrRevokedTerminated)
		}
	}
	return out
}

func jobID(j *job) string {
	if j.msg == nil {
		return ""
	}
	return j.msg.ID
}

// discardRevokedStamp settles j with REVOKED when one of its stamps is
// revoked (celery logs "(revoked by header: {...})").
func (w *Worker) discardRevokedStamp(ctx context.Context, j *job) bool {
	s, ok := w.mon.revokedStamps.Match(j.msg)
	if !ok {
		return false
	}
	j.log.Info(fmt.Sprintf("Discarding revoked task: %s[%s] (revoked by header: {%s: %s})",
		j.msg.Task, j.msg.ID, protocol.PyRepr(s.Name), protocol.PyRepr(s.Value)), "reason", "revoked")
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, revokedError("revoked").Info())
	}
	w.settleRevoked(ctx, j, m, false, 0)
	return true
}
