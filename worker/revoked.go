package worker

import (
	"bufio"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/omicsomics/omics-worker/protocol"
)

// Limits of the revoked set: Celery's CELERY_WORKER_REVOKES_MAX and
// CELERY_WORKER_REVOKE_EXPIRES defaults (spec §4.7).
const (
	RevokesMax    = 50000
	RevokeExpires = 10800 * time.Second
)

// Monotonic returns Python's time.monotonic() on this host (CLOCK_MONOTONIC
// seconds). Revoked-set timestamps use this clock because Python peers send
// theirs in it during mingle.
func Monotonic() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return float64(time.Now().UnixNano()) / 1e9
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// RevokedSet is Celery's LimitedSet of revoked task ids: id → insertion
// time (monotonic seconds), at most MaxLen entries (the oldest are dropped
// first), entries older than Expires are purged when the set is purged or
// grows past MaxLen. Safe for concurrent use; the zero value uses the
// Celery limits.
type RevokedSet struct {
	// MaxLen bounds the set (default RevokesMax).
	MaxLen int
	// Expires is the time-to-live of an entry (default RevokeExpires).
	Expires time.Duration
	// Now is the clock (default Monotonic); for tests.
	Now func() float64

	mu   sync.Mutex
	data map[string]float64
	h    revHeap
}

type revEntry struct {
	ts float64
	id string
}

// revHeap is a min-heap by (ts, id), possibly holding stale entries (ids
// re-added or discarded); they are skipped when popped.
type revHeap []revEntry

func (h revHeap) Len() int { return len(h) }
func (h revHeap) Less(i, k int) bool {
	if h[i].ts != h[k].ts {
		return h[i].ts < h[k].ts
	}
	return h[i].id < h[k].id
}
func (h revHeap) Swap(i, k int) { h[i], h[k] = h[k], h[i] }
func (h *revHeap) Push(x any)   { *h = append(*h, x.(revEntry)) }
func (h *revHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (s *RevokedSet) now() float64 {
	if s.Now != nil {
		return s.Now()
	}
	return Monotonic()
}

func (s *RevokedSet) maxLen() int {
	if s.MaxLen > 0 {
		return s.MaxLen
	}
	return RevokesMax
}

func (s *RevokedSet) expires() float64 {
	if s.Expires > 0 {
		return s.Expires.Seconds()
	}
	return RevokeExpires.Seconds()
}

// Add inserts ids (or refreshes their time) at the current time.
func (s *RevokedSet) Add(ids ...string) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.addLocked(id, now)
	}
}

func (s *RevokedSet) addLocked(id string, ts float64) {
	if s.data == nil {
		s.data = make(map[string]float64)
	}
	s.data[id] = ts
	heap.Push(&s.h, revEntry{ts, id})
	if len(s.data) >= s.maxLen() {
		s.purgeLocked(s.now())
	}
	// Stale heap entries are compacted when they dominate.
	if len(s.h) > 2*len(s.data)+64 {
		s.h = s.h[:0]
		for k, v := range s.data {
			s.h = append(s.h, revEntry{v, k})
		}
		heap.Init(&s.h)
	}
}

// Merge adds entries received from a peer (mingle hello): values are Python
// floats (monotonic seconds of the peer). Timestamps outside [now-Expires,
// now] — another host's monotonic clock — are replaced by now, so a shared
// revoke is never dropped at once nor kept forever. An existing newer
// entry is kept.
func (s *RevokedSet) Merge(entries map[string]float64) {
	now := s.now()
	exp := s.expires()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ts := range entries {
		if ts > now || ts < now-exp {
			ts = now
		}
		if old, ok := s.data[id]; ok && old >= ts {
			continue
		}
		s.addLocked(id, ts)
	}
}

// Contains reports whether id is revoked (and not expired).
func (s *RevokedSet) Contains(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.data[id]
	return ok && ts+s.expires() > s.now()
}

// Discard removes id.
func (s *RevokedSet) Discard(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, id)
}

// Len is the number of entries.
func (s *RevokedSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}

// Purge drops entries beyond MaxLen (oldest first) and expired entries.
func (s *RevokedSet) Purge() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(s.now())
}

func (s *RevokedSet) purgeLocked(now float64) {
	exp := s.expires()
	for s.h.Len() > 0 {
		e := s.h[0]
		if ts, ok := s.data[e.id]; !ok || ts != e.ts {
			heap.Pop(&s.h) // stale
			continue
		}
		if len(s.data) > s.maxLen() || e.ts+exp <= now {
			heap.Pop(&s.h)
			delete(s.data, e.id)
			continue
		}
		break
	}
}

// IDs lists the revoked ids, oldest first (inspect revoked).
func (s *RevokedSet) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(s.now())
	type kv struct {
		id string
		ts float64
	}
	all := make([]kv, 0, len(s.data))
	for k, v := range s.data {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, k int) bool {
		if all[i].ts != all[k].ts {
			return all[i].ts < all[k].ts
		}
		return all[i].id < all[k].id
	})
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = e.id
	}
	return out
}

// Snapshot returns id → insertion time (monotonic seconds), after a purge:
// the dict a Python worker sends in mingle (as {id: [ts, id]}).
func (s *RevokedSet) Snapshot() map[string]float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(s.now())
	out := make(map[string]float64, len(s.data))
	for k, v := range s.data {
		out[k] = v
	}
	return out
}

// --- statedb ------------------------------------------------------------

// StateDB file format (ours; Python's shelve file is not readable here):
// UTF-8 JSON lines. The first line is a header
//
//	{"format": "omics-worker-statedb", "version": 1, "saved_at": <epoch float>, "clock": <int>}
//
// and every further line one revoked id with its age in seconds at save
// time: ["<task id>", <age float>]. Ages (not timestamps) are stored because
// monotonic time restarts with the host. Unknown header keys are ignored;
// a line that does not parse is an error with its line number.
const stateDBFormat = "omics-worker-statedb"

// ErrStateDB marks a malformed state file.
var ErrStateDB = errors.New("statedb: malformed file")

// StateDBError is a parse error in a state file, with its line.
type StateDBError struct {
	Path string
	Line int
	Err  error
}

func (e *StateDBError) Error() string {
	return fmt.Sprintf("statedb %s:%d: %v", e.Path, e.Line, e.Err)
}

func (e *StateDBError) Unwrap() error { return ErrStateDB }

type stateHeader struct {
	Format  string  `json:"format"`
	Version int     `json:"version"`
	SavedAt float64 `json:"saved_at"`
	Clock   int64   `json:"clock"`
}

// WriteState writes the revoked set and clock in the statedb format.
func (s *RevokedSet) WriteState(w io.Writer, clock int64) error {
	snap := s.Snapshot()
	now := s.now()
	bw := bufio.NewWriter(w)
	hdr, _ := json.Marshal(stateHeader{Format: stateDBFormat, Version: 1,
		SavedAt: float64(time.Now().UnixMicro()) / 1e6, Clock: clock})
	bw.Write(hdr)
	bw.WriteByte('\n')
	ids := make([]string, 0, len(snap))
	for id := range snap {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		line, err := json.Marshal([]any{id, max(now-snap[id], 0)})
		if err != nil {
			return err
		}
		bw.Write(line)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// ReadState loads a statedb stream into the set (ages are shifted by the
// time elapsed since the save) and returns the saved clock.
func (s *RevokedSet) ReadState(r io.Reader, name string) (clock int64, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	var hdr stateHeader
	now := s.now()
	entries := map[string]float64{}
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		if line == 1 {
			if err := json.Unmarshal(b, &hdr); err != nil || hdr.Format != stateDBFormat {
				return 0, &StateDBError{name, line, fmt.Errorf("not an %s header", stateDBFormat)}
			}
			if hdr.Version != 1 {
				return 0, &StateDBError{name, line, fmt.Errorf("unsupported version %d", hdr.Version)}
			}
			continue
		}
		var rec []json.RawMessage
		var id string
		var age float64
		if json.Unmarshal(b, &rec) != nil || len(rec) != 2 ||
			json.Unmarshal(rec[0], &id) != nil || json.Unmarshal(rec[1], &age) != nil || id == "" {
			return 0, &StateDBError{name, line, errors.New(`want ["<id>", <age seconds>]`)}
		}
		elapsed := float64(time.Now().UnixMicro())/1e6 - hdr.SavedAt
		entries[id] = now - age - max(elapsed, 0)
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("statedb %s: %w", name, err)
	}
	if line == 0 {
		return 0, nil
	}
	// Entries are added directly (not via Merge): old ones must expire.
	s.mu.Lock()
	exp := s.expires()
	for id, ts := range entries {
		if ts+exp > now {
			s.addLocked(id, ts)
		}
	}
	s.mu.Unlock()
	return hdr.Clock, nil
}

// SaveStateFile writes the state atomically (temp file + rename).
func (s *RevokedSet) SaveStateFile(path string, clock int64) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("statedb: %w", err)
	}
	tmp := f.Name()
	err = s.WriteState(f, clock)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("statedb: save %s: %w", path, err)
	}
	return nil
}

// LoadStateFile reads path; a missing file is not an error (first start).
func (s *RevokedSet) LoadStateFile(path string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("statedb: %w", err)
	}
	defer f.Close()
	return s.ReadState(f, path)
}

// --- revoking tasks ----------------------------------------------------------

// ErrRevokedTerminated is the cancellation cause of a task's context when
// a remote `revoke --terminate` (or `terminate`) hits it. The runtime
// stores REVOKED (TaskRevokedError('terminated')) once the handler returns.
var ErrRevokedTerminated = &PyError{Type: "TaskRevokedError", Module: "celery.exceptions", Args: []any{"terminated"}}

// errRevokedAnnounced marks a job whose task-revoked was already sent.
var errRevokedAnnounced = errors.New("revoked (announced)")

// Revoke adds ids to the revoked set. With terminate, running tasks among
// them are cancelled (cause ErrRevokedTerminated) and reserved ones will
// be discarded; it returns the ids found here (running or reserved), in
// the order given.
func (w *Worker) Revoke(ids []string, terminate bool, signum int) []string {
	x := &w.mon
	x.revoked.Add(ids...)
	if !terminate {
		return nil
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]bool{}
	var cancels []context.CancelCauseFunc
	w.mu.Lock()
	for j := range w.running {
		if j.msg != nil && want[j.msg.ID] {
			found[j.msg.ID] = true
			if j.cancel != nil {
				cancels = append(cancels, j.cancel)
			}
		}
	}
	for j := range w.held {
		if j.msg != nil && want[j.msg.ID] && j.state != stateDone {
			found[j.msg.ID] = true
		}
	}
	w.mu.Unlock()
	x.mu.Lock()
	for id := range found {
		x.terminate[id] = signum
	}
	x.mu.Unlock()
	for _, c := range cancels {
		c(ErrRevokedTerminated)
	}
	var out []string
	for _, id := range ids {
		if found[id] {
			out = append(out, id)
			delete(found, id)
		}
	}
	return out
}

// discardRevoked settles j with REVOKED when its id is in the revoked set
// or one of its stamps is revoked (revoked_stamps.go).
func (w *Worker) discardRevoked(ctx context.Context, j *job) bool {
	if !w.mon.revoked.Contains(j.msg.ID) {
		return w.discardRevokedStamp(ctx, j)
	}
	j.log.Info(fmt.Sprintf("Discarding revoked task: %s[%s]", j.msg.Task, j.msg.ID), "reason", "revoked")
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, revokedError("revoked").Info())
	}
	w.settleRevoked(ctx, j, m, false, 0)
	return true
}

// settleRevoked announces task-revoked and settles j with m; signum is
// the signal of a terminate (terminated true).
func (w *Worker) settleRevoked(ctx context.Context, j *job, m *protocol.ResultMeta, terminated bool, signum int) {
	x := &w.mon
	x.mu.Lock()
	x.outcomes[j] = outcome{err: errRevokedAnnounced}
	delete(x.terminate, j.msg.ID)
	x.mu.Unlock()
	if obs := w.observers(); len(obs) > 0 {
		ev := w.taskEvent(j, EventTaskRevoked)
		ev.Meta, ev.Terminated, ev.Signum = m, terminated, signum
		emit(obs, ev)
	}
	w.settle(ctx, j, m)
	w.canvasRevoked(ctx, j, revokedError("revoked").Info()) // canvas.go
}

// hookCancelSet runs once j.cancel is set: a terminate that arrived while
// the task was starting takes effect now.
func (w *Worker) hookCancelSet(j *job) {
	x := &w.mon
	x.mu.Lock()
	_, term := x.terminate[j.msg.ID]
	x.mu.Unlock()
	if term {
		w.mu.Lock()
		c := j.cancel
		w.mu.Unlock()
		if c != nil {
			c(ErrRevokedTerminated)
		}
	}
}

// hookFinish runs when the handler returned. It records the outcome for
// the final event and turns a terminated task into REVOKED; true means it
// settled j.
func (w *Worker) hookFinish(ctx context.Context, j *job, tctx context.Context, o outcome) bool {
	x := &w.mon
	x.mu.Lock()
	x.outcomes[j] = o
	sig, term := x.terminate[j.msg.ID]
	delete(x.terminate, j.msg.ID)
	x.mu.Unlock()
	if !term || !errors.Is(context.Cause(tctx), ErrRevokedTerminated) || o.err == nil {
		// A handler that completed despite the terminate keeps its
		// SUCCESS: its work is done and consistent.
		return false
	}
	j.log.Info(fmt.Sprintf("Task %s[%s] terminated by remote revoke", j.msg.Task, j.msg.ID), "signum", sig)
	var m *protocol.ResultMeta
	if !w.ignoreResult(j) {
		m = w.baseMeta(j.msg, protocol.StateRevoked, ErrRevokedTerminated.Info())
	}
	w.settleRevoked(ctx, j, m, true, sig)
	return true
}
