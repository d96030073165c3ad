-- _lib.lua: shared by every Tide script; the loader pastes it where a script says --!include _lib.
-- Every script is called with the same head, built once by app/scripts.py:
-- KEYS[1] delayed zset      KEYS[2] events stream   KEYS[3] scheduled-count hash
-- KEYS[4] queue-name set    KEYS[5] worker hash     KEYS[6] worker last-seen zset
-- ARGV[1] job key prefix    ARGV[2] queue key prefix  ARGV[3] dead key prefix  ARGV[4] group
-- ARGV[5] events maxlen     ARGV[6] dead maxlen       ARGV[7] result ttl (s)
-- A script's own arguments start at ARGV[FIRST]. A batch of records travels as ONE argument,
-- fields joined by newlines (JSON is compact and names are checked, so no field holds one):
-- the client then encodes one argument per call instead of several per job.
local DELAYED, EVENTS, SCHEDULED, QUEUES, WORKERS, SEEN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local JOB, QUEUE, DEAD, GROUP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local EVENTS_MAXLEN, DEAD_MAXLEN, RESULT_TTL = ARGV[5], ARGV[6], ARGV[7]
local FIRST = 8

-- milliseconds on the Redis server's clock: the only clock due times and timestamps use
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function records(packed)
  local out, i = {}, 1
  while true do
    local j = string.find(packed, '\n', i, true)
    if not j then
      out[#out + 1] = string.sub(packed, i)
      return out
    end
    out[#out + 1] = string.sub(packed, i, j - 1)
    i = j + 1
  end
end

local function fmt(ms)
  return string.format('%.3f', ms)
end

-- status changes are collected and appended as ONE events-stream entry per script call:
-- fields n (count) and changes (four fields per change: job id, status, queue, tenant).
local changes = {}
local function emit(id, status, queue, tenant)
  local n = #changes
  changes[n + 1], changes[n + 2], changes[n + 3], changes[n + 4] = id, status, queue, tenant or ''
end

-- the fence: the lease still belongs to this consumer and this attempt. Every script that moves
-- an entry to another owner or ends the attempt also changes the job record in the same atomic
-- step: a transfer (XAUTOCLAIM in claim.lua, then start_job) sets 'worker' and bumps 'attempts';
-- anything else leaves 'running' (finish, release, dead-letter, cancel on reclaim). So checking
-- status, worker and attempts checks the pending list's owner without an XPENDING per job.
-- Returns the job's {status, attempts, worker, tenant, max_attempts, cancel} when it holds.
local function holds_lease(key, consumer, token)
  local f = redis.call('HMGET', key, 'status', 'attempts', 'worker', 'tenant', 'max_attempts',
    'cancel')
  if f[1] ~= 'running' or f[2] ~= token or f[3] ~= consumer then
    return false
  end
  return f
end

-- acked entries are deleted, so a queue stream holds only waiting and running work. The
-- acks and deletes of a call are sent by done() as one XACK and one XDEL per stream: inside one
-- script that is the same atomic change, at a fraction of the per-command cost.
local drops = {}
local function drop_entry(stream, eid)
  local ids = drops[stream]
  if not ids then
    ids = {}
    drops[stream] = ids
  end
  ids[#ids + 1] = eid
end

local unpack = unpack or table.unpack

-- every script that changes state ends with `return done(reply)`
local function done(reply)
  for stream, ids in pairs(drops) do
    for i = 1, #ids, 500 do
      local last = math.min(i + 499, #ids)
      redis.call('XACK', stream, GROUP, unpack(ids, i, last))
      redis.call('XDEL', stream, unpack(ids, i, last))
    end
  end
  if #changes > 0 then
    redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'n', #changes / 4, 'changes', table.concat(changes, '\n'))
  end
  return reply
end

local function terminate(key, id, status, queue, tenant, now, field, value)
  if field then
    redis.call('HSET', key, 'status', status, 'finished_at', fmt(now), field, value)
  else
    redis.call('HSET', key, 'status', status, 'finished_at', fmt(now))
  end
  redis.call('EXPIRE', key, RESULT_TTL)
  emit(id, status, queue, tenant)
end

local function dead_letter(key, id, queue, tenant, err, attempts, now)
  redis.call('XADD', DEAD .. queue, 'MAXLEN', '~', DEAD_MAXLEN, '*',
    'job', id, 'error', err, 'attempts', attempts)
  terminate(key, id, 'failed', queue, tenant, now, 'error', err)
end

local function schedule(id, queue, tenant, due)
  redis.call('ZADD', DELAYED, due, id)
  redis.call('HINCRBY', SCHEDULED, queue, 1)
  emit(id, 'scheduled', queue, tenant)
end

-- add the job's stream entry; the caller records status 'pending' and the entry id
local function enqueue(id, queue, tenant)
  local eid = redis.call('XADD', QUEUE .. queue, '*', 'j', id)
  emit(id, 'pending', queue, tenant)
  return eid
end

-- begin an attempt on an entry this consumer now holds. Returns what the worker needs to run
-- it, or false when there is nothing to run (the job is gone, finished, cancelled, superseded
-- by a newer entry, or out of attempts: then it is dead-lettered). A `fresh` entry (just read
-- with XREADGROUP) whose job is already running was claimed by another worker while this one
-- was slow to start it: it is that worker's now, so it is left alone.
local function start_job(stream, eid, id, queue, consumer, now, fresh)
  local key = JOB .. id
  local f = redis.call('HMGET', key, 'status', 'attempts', 'max_attempts', 'type', 'payload',
    'timeout_s', 'tenant', 'entry', 'cancel')
  if (f[1] ~= 'pending' and f[1] ~= 'running') or f[8] ~= eid then
    drop_entry(stream, eid)
    return false
  end
  if fresh and f[1] == 'running' then
    return false
  end
  if f[9] == '1' then -- cancel was asked while its last worker ran it, and that worker died
    drop_entry(stream, eid)
    terminate(key, id, 'cancelled', queue, f[7], now)
    return false
  end
  local attempts = tonumber(f[2]) + 1
  if attempts > tonumber(f[3]) then
    drop_entry(stream, eid)
    local err = '{"type":"LeaseExpired","message":"the worker running attempt ' .. f[2] ..
      ' stopped without finishing and no attempts are left"}'
    dead_letter(key, id, queue, f[7], err, f[2], now)
    return false
  end
  redis.call('HSET', key, 'status', 'running', 'attempts', attempts, 'started_at', fmt(now),
    'worker', consumer)
  emit(id, 'running', queue, f[7])
  return {eid, id, queue, tostring(attempts), f[4], f[5], f[6], f[3]}
end
