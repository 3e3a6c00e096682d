package redistransport

import (
	"context"
	"fmt"
	"strconv"

	"github.com/gomodule/redigo/redis"

	"github.com/omicsomics/omics-worker/protocol"
)

// chordPartScript is the Redis result backend's on_chord_part_return in one
// atomic step, on celery's own keys:
//
//	KEYS[1] = celery-taskset-meta-<gid>.j   the joined results
//	KEYS[2] = celery-taskset-meta-<gid>.t   header growth (add_to_chord)
//	KEYS[3] = celery-taskset-meta-<gid>.s   the chord size (set by the client)
//	ARGV[1] = the entry [1, id, state, result]
//	ARGV[2] = group_index ("+inf" when unknown)
//	ARGV[3] = "1": ordered (ZADD by group_index, result_chord_ordered, the
//	          default of celery 5.2 and 5.5); "0": RPUSH in arrival order
//	ARGV[4] = expiry seconds ("0" = none)
//
// Like celery it adds the entry, counts, reads .t and .s and refreshes the
// expiry of the three keys. When the count reaches size + .t it returns
// {1, entries...} in header order and deletes the keys, so exactly one
// caller (Go or Python: redis-py's pipeline is a MULTI) sees completion.
// An existing .j of the other type (a Python worker configured with the
// other result_chord_ordered) is followed, not overwritten.
var chordPartScript = redis.NewScript(3, `
local ordered = ARGV[3] == '1'
local kt = redis.call('TYPE', KEYS[1])['ok']
if kt == 'list' then ordered = false elseif kt == 'zset' then ordered = true end
local ready
if ordered then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
  ready = redis.call('ZCOUNT', KEYS[1], '-inf', '+inf')
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  ready = redis.call('LLEN', KEYS[1])
end
local diff = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local size = redis.call('GET', KEYS[3])
local exp = tonumber(ARGV[4])
if exp and exp > 0 then
  redis.call('EXPIRE', KEYS[1], exp)
  redis.call('EXPIRE', KEYS[2], exp)
  redis.call('EXPIRE', KEYS[3], exp)
end
if not size then return {0, ready, -1} end
local total = tonumber(size) + diff
if ready ~= total then return {0, ready, total} end
local entries
if ordered then
  entries = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  entries = redis.call('LRANGE', KEYS[1], 0, total)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local out = {1, ready, total}
for i = 1, #entries do out[#out + 1] = entries[i] end
return out
`)

// ChordPartReturn records a chord header part's final state (celery's
// RedisBackend.on_chord_part_return) and reports whether it completed
// the chord. result is the JSON result or an *protocol.ExceptionInfo.
func (r *ResultBackend) ChordPartReturn(ctx context.Context, groupID, taskID string, groupIndex *int, state string, result any) (protocol.ChordJoin, error) {
	entry, err := protocol.ChordPartEntry(taskID, state, result)
	if err != nil {
		return protocol.ChordJoin{}, fmt.Errorf("chord part %s: %w", taskID, err)
	}
	idx := "+inf"
	if groupIndex != nil {
		idx = strconv.Itoa(*groupIndex)
	}
	ordered := "1"
	if r.chordUnordered {
		ordered = "0"
	}
	base := r.names.GroupResultKey(groupID)
	rc, err := r.c.get(ctx)
	if err != nil {
		return protocol.ChordJoin{}, err
	}
	defer rc.Close()
	vals, err := redis.Values(chordPartScript.Do(rc, base+".j", base+".t", base+".s", entry, idx, ordered, r.expires))
	if err != nil {
		return protocol.ChordJoin{}, wrapErr("chord part return", err)
	}
	if len(vals) < 3 {
		return protocol.ChordJoin{}, fmt.Errorf("chord part return: short reply (%d values)", len(vals))
	}
	done, _ := redis.Int(vals[0], nil)
	ready, _ := redis.Int(vals[1], nil)
	total, _ := redis.Int(vals[2], nil)
	j := protocol.ChordJoin{Complete: done == 1, Ready: ready, Total: total}
	if !j.Complete {
		return j, nil
	}
	for _, v := range vals[3:] {
		b, err := redis.Bytes(v, nil)
		if err != nil {
			return j, fmt.Errorf("chord %s: entry: %w", groupID, err)
		}
		p, err := protocol.DecodeChordPart(b)
		if err != nil {
			return j, fmt.Errorf("chord %s: %w", groupID, err)
		}
		j.Parts = append(j.Parts, p)
	}
	return j, nil
}

// SetChordSize stores the chord size (celery's set_chord_size: a plain
// SET/SETEX of celery-taskset-meta-<gid>.s), for chords the worker applies
// itself (a chord as a callback or chain step).
func (r *ResultBackend) SetChordSize(ctx context.Context, groupID string, size int) error {
	key := r.names.GroupResultKey(groupID) + ".s"
	var err error
	if r.expires != "0" {
		_, err = r.c.do(ctx, "SETEX", key, r.expires, size)
	} else {
		_, err = r.c.do(ctx, "SET", key, size)
	}
	return err
}

// SetChordOrdered selects result_backend_transport_options
// result_chord_ordered (default true in celery 5.2 and 5.5). It only
// matters for a chord's first part: later parts follow the key's type.
func (r *ResultBackend) SetChordOrdered(ordered bool) { r.chordUnordered = !ordered }
