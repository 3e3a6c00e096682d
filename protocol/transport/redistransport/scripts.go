package redistransport

import "github.com/gomodule/redigo/redis"

// recordFn is the Lua function shared by the fetch scripts: it records one
// popped envelope as unacked exactly as kombu's QoS.append does
// (ZADD unacked_index <now> <tag>; HSET unacked <tag> '[<envelope>, "<exchange>", "<routing_key>"]')
// and returns the delivery tag, or "" when raw is not a JSON value it can
// record (then nothing is written and the caller treats the delivery as
// undecodable).
//
// The envelope is embedded verbatim (no re-encoding), so the stored array is
// exactly what the message was. A missing delivery_tag is replaced by the
// caller-provided fallback; a missing exchange is "" and a missing or empty
// routing key is the queue name, so a restore goes back where it came from.
//
// KEYS[1] = unacked, KEYS[2] = unacked_index, ARGV[1] = now (float seconds).
const recordFn = `
local function record(raw, qname, fallback)
  local ok, env = pcall(cjson.decode, raw)
  if not ok or type(env) ~= 'table' then return '' end
  local tag, ex, rk = nil, '', qname
  local p = env['properties']
  if type(p) == 'table' then
    local t = p['delivery_tag']
    if type(t) == 'string' and t ~= '' then tag = t end
    local di = p['delivery_info']
    if type(di) == 'table' then
      if type(di['exchange']) == 'string' then ex = di['exchange'] end
      local r = di['routing_key']
      if type(r) == 'string' and r ~= '' then rk = r end
    end
  end
  if not tag then tag = fallback end
  redis.call('ZADD', KEYS[2], ARGV[1], tag)
  redis.call('HSET', KEYS[1], tag, '[' .. raw .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']')
  return tag
end
`

// fetchScript pops up to max messages without blocking, in kombu's BRPOP
// order (priority step outer, queue inner) with round-robin rotation after
// every pop, and records each one as unacked in the same atomic step.
//
// KEYS[3..] = the consume keys in step-major order for the queue order
// given (key of step s, queue q = KEYS[2 + s*nq + q]).
// ARGV[2] = nq, ARGV[3] = ns, ARGV[4] = max, ARGV[5..4+nq] = queue names,
// ARGV[5+nq..4+nq+max] = fallback tags.
// Returns a flat array: queue index (1-based), raw, tag, repeated.
var fetchScript = redis.NewScript(-1, recordFn+`
local nq = tonumber(ARGV[2])
local ns = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
local order = {}
for i = 1, nq do order[i] = i end
local out = {}
local n = 0
while n < max do
  local got = false
  for s = 0, ns - 1 do
    for pos = 1, nq do
      local q = order[pos]
      local raw = redis.pcall('RPOP', KEYS[2 + s * nq + q])
      if type(raw) == 'string' then
        n = n + 1
        local tag = record(raw, ARGV[4 + q], ARGV[4 + nq + n])
        out[#out + 1] = q
        out[#out + 1] = raw
        out[#out + 1] = tag
        table.remove(order, pos)
        order[#order + 1] = q
        got = true
        break
      end
    end
    if got then break end
  end
  if not got then break end
end
return out
`)

// recordScript records a message popped by BRPOP.
// ARGV[2] = queue name, ARGV[3] = fallback tag, ARGV[4] = raw.
var recordScript = redis.NewScript(2, recordFn+`
return record(ARGV[4], ARGV[2], ARGV[3])
`)

// restoreScript is the compare-and-swap half of restore_by_tag: if the
// unacked record of the tag is still exactly ARGV[1] (and, for a visibility
// restore, its index score is still <= ARGV[2]) it removes the record and
// pushes ARGV[5] to every key KEYS[3..], LPUSH when ARGV[3] == "1" else
// RPUSH. ARGV[4] is the tag. An absent record just cleans the index.
// Returns 1 if pushed, 0 if the record was gone, -1 if it changed or was
// touched (the caller re-reads and retries or skips).
var restoreScript = redis.NewScript(-1, `
local cur = redis.call('HGET', KEYS[1], ARGV[4])
if not cur then
  redis.call('ZREM', KEYS[2], ARGV[4])
  return 0
end
if cur ~= ARGV[1] then return -1 end
if ARGV[2] ~= '+inf' then
  local sc = redis.call('ZSCORE', KEYS[2], ARGV[4])
  if sc and tonumber(sc) > tonumber(ARGV[2]) then return -1 end
end
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('HDEL', KEYS[1], ARGV[4])
for i = 3, #KEYS do
  if ARGV[3] == '1' then
    redis.call('LPUSH', KEYS[i], ARGV[5])
  else
    redis.call('RPUSH', KEYS[i], ARGV[5])
  end
end
return 1
`)

// releaseScript releases the unacked_mutex only if we still own it (the
// redis-py Lock release).
var releaseScript = redis.NewScript(1, `
local t = redis.call('GET', KEYS[1])
if not t or t ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// refreshMutexScript extends the unacked_mutex's expiry only if we still
// own it (the redis-py Lock extend). ARGV[1] = token, ARGV[2] = PX.
var refreshMutexScript = redis.NewScript(1, `
local t = redis.call('GET', KEYS[1])
if not t or t ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// storeFn writes a task result the way celery's Redis backend does: GET the
// current value; if it decodes to status SUCCESS write nothing; else
// SETEX (SET when expires is 0) and PUBLISH the same bytes on the key.
// KEYS[1] = result key, ARGV[1] = meta JSON, ARGV[2] = expires seconds.
//
// The stored value is only cjson-decoded when its bytes contain SUCCESS at
// all (a plain substring search): a stored SUCCESS state always does, so
// the guard is unchanged, and the common writes (over nothing, STARTED or
// PROGRESS) skip the decode.
//
// ARGV[first..] are earlier states of the same task (never SUCCESS) folded
// into this write by the group-commit writer: each is only PUBLISHed, in
// order, before meta is stored and published. Inside one atomic script
// their SETEX would be overwritten before any client could read it, and
// the guard gives the same answer for all of them (none is SUCCESS), so
// subscribers see the same messages and GET the same values as with one
// write per state.
const storeFn = `
local function store(key, meta, ex, first)
  local cur = redis.call('GET', key)
  if cur and string.find(cur, 'SUCCESS', 1, true) then
    local ok, m = pcall(cjson.decode, cur)
    if ok and type(m) == 'table' and m['status'] == 'SUCCESS' then return 0 end
  end
  for i = first, #ARGV do
    redis.call('PUBLISH', key, ARGV[i])
  end
  if ex ~= '0' then
    redis.call('SETEX', key, ex, meta)
  else
    redis.call('SET', key, meta)
  end
  redis.call('PUBLISH', key, meta)
  return 1
end
`

var storeScript = redis.NewScript(1, storeFn+`
return store(KEYS[1], ARGV[1], ARGV[2], 3)
`)

// storeAckScript acknowledges a delivery (ZREM unacked_index, HDEL unacked
// on the broker database) and stores a result (on the result database,
// SELECTed inside the script when it differs) in one atomic round trip.
// KEYS[1] = result key, KEYS[2] = unacked, KEYS[3] = unacked_index;
// ARGV[1] = meta, ARGV[2] = expires, ARGV[3] = tag ("" = no ack),
// ARGV[4] = result db, ARGV[5] = broker db, ARGV[6..] = earlier states
// to publish first (see storeFn). Runs on a broker connection.
var storeAckScript = redis.NewScript(3, storeFn+`
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  redis.call('HDEL', KEYS[2], ARGV[3])
end
if ARGV[4] ~= ARGV[5] then redis.call('SELECT', ARGV[4]) end
return store(KEYS[1], ARGV[1], ARGV[2], 6)
`)
