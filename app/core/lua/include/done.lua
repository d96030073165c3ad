-- done.lua: what a state-changing script collects while it runs and writes once at its end.
-- Every script that changes state ends with `return done(reply)`.
--!include head

-- status changes are collected and appended as ONE events-stream entry per script call:
-- fields n (count), c (running count of changes up to and including this entry's) and changes
-- (four fields per change: job id, status, queue, tenant).
local changes = {}
local function emit(id, status, queue, tenant)
  local n = #changes
  changes[n + 1], changes[n + 2], changes[n + 3], changes[n + 4] = id, status, queue, tenant or ''
end

-- jobs that reached a terminal state, per queue, added by done() to the hash of the current
-- minute (server clock) under EVENTS .. ':finished:' (Keys.finished): what GET /v1/queues
-- reports as throughput. One HINCRBY per queue and call, so the finish path stays cheap.
local FINISHED_TTL_S = 180
local finished = {}
local function count_finished(queue)
  finished[queue] = (finished[queue] or 0) + 1
end

local function add_finished()
  local key = EVENTS .. ':finished:' .. math.floor(now_ms() / 60000)
  for queue, n in pairs(finished) do
    redis.call('HINCRBY', key, queue, n)
  end
  redis.call('EXPIRE', key, FINISHED_TTL_S)
end

local function running_count(entry)
  local f = entry[2]
  for j = 1, #f, 2 do
    if f[j] == 'c' then
      return tonumber(f[j + 1])
    end
  end
  return 0
end

-- the stream keeps the newest EVENTS_MAX_CHANGES changes, in whole entries (a replay never
-- splits a batch): entries whose every change is older go, oldest first. An entry can hold 500
-- changes, so a cap in entries would not bound memory. At most 100 entries go per call; a
-- backlog (a lowered cap) shrinks over the next calls.
local function append_events()
  local n = #changes / 4
  local newest = redis.call('XREVRANGE', EVENTS, '+', '-', 'COUNT', 1)[1]
  local count = n + (newest and running_count(newest) or 0)
  redis.call('XADD', EVENTS, '*', 'n', n, 'c', count, 'changes', table.concat(changes, '\n'))
  local outdated = count - tonumber(EVENTS_MAX_CHANGES)
  if outdated < 1 then
    return
  end
  local first = redis.call('XRANGE', EVENTS, '-', '+', 'COUNT', 1)[1]
  local steps = 0
  -- the entry just added is never outdated, so `first` always exists
  while running_count(first) <= outdated and steps < 100 do
    first = redis.call('XRANGE', EVENTS, '(' .. first[1], '+', 'COUNT', 1)[1]
    steps = steps + 1
  end
  if steps > 0 then
    redis.call('XTRIM', EVENTS, 'MINID', first[1])
  end
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

local function done(reply)
  for stream, ids in pairs(drops) do
    for i = 1, #ids, 500 do
      local last = math.min(i + 499, #ids)
      redis.call('XACK', stream, GROUP, unpack(ids, i, last))
      redis.call('XDEL', stream, unpack(ids, i, last))
    end
  end
  if #changes > 0 then
    append_events()
  end
  if next(finished) then
    add_finished()
  end
  return reply
end
