-- done.lua: what a state-changing script collects while it runs and writes once at its end.
-- Every script that changes state ends with `return done(reply)`.
--!include head
--!include gauges

-- status changes are collected and appended as ONE events-stream entry per script call:
-- fields n (count), c (running count of changes up to and including this entry's) and changes
-- (four fields per change: job id, status, queue, tenant). The running count is kept in its own
-- counter, EVENTS .. ':count' (Keys.events_count): one INCRBY instead of reading the newest entry.
-- Every status change goes through emit, with the status it leaves (nil for a new job), so the
-- tenant gauges (gauges.lua) see each change the live subscribers see.
local EVENTS_COUNT = EVENTS .. ':count'
local changes = {}
local function emit(id, from, status, queue, tenant)
  move(id, tenant, from, status)
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
    redis.call('HINCRBY', key, queue, int(n))
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
-- changes, so a cap in entries would not bound memory. Reading entries to find the cut would
-- copy their changes on every call, so the cut is found in EVENTS .. ':marks' (Keys.
-- events_marks): a list of '<entry id> <running count>', one mark each time the count passes a
-- multiple of a step (a 64th of the cap). Trimming happens at those crossings only, and keeps
-- at least the cap and at most about a step more; a cap of 64 changes or less is exact.
local EVENTS_MARKS = EVENTS .. ':marks'
local MARK_PAGE = 100

-- the id just after entry `eid`, so that XTRIM MINID drops `eid` itself
local function after_entry(eid)
  local ms, seq = string.match(eid, '^(%d+)-(%d+)$')
  return ms .. '-' .. (tonumber(seq) + 1)
end

local function trim_events(count)
  local outdated = count - tonumber(EVENTS_MAX_CHANGES)
  if outdated < 1 then
    return
  end
  local marks = redis.call('LRANGE', EVENTS_MARKS, 0, MARK_PAGE - 1)
  local cut, gone = nil, 0
  for _, mark in ipairs(marks) do
    local eid, c = string.match(mark, '^(%S+) (%d+)$')
    if tonumber(c) > outdated then
      break
    end
    cut, gone = eid, gone + 1
  end
  if cut then
    redis.call('LTRIM', EVENTS_MARKS, gone, -1)
    redis.call('XTRIM', EVENTS, 'MINID', after_entry(cut))
  end
end

local function append_events()
  local n = #changes / 4
  local count = redis.call('INCRBY', EVENTS_COUNT, int(n))
  if count == n then
    -- a new counter next to a stream that may have entries (written before the counter
    -- existed, or the counter was lost): go on from the newest entry's count, so trimming
    -- never mistakes the older entries for newer ones, and mark that entry unless a mark
    -- already reaches it; an empty stream starts afresh, without the marks of a stream gone
    local newest = redis.call('XREVRANGE', EVENTS, '+', '-', 'COUNT', 1)[1]
    if newest then
      local before = running_count(newest)
      count = n + before
      redis.call('SET', EVENTS_COUNT, count)
      local last = redis.call('LINDEX', EVENTS_MARKS, -1)
      if not last or tonumber(string.match(last, ' (%d+)$')) < before then
        redis.call('RPUSH', EVENTS_MARKS, newest[1] .. ' ' .. before)
      end
    else
      redis.call('DEL', EVENTS_MARKS)
    end
  end
  local eid = redis.call('XADD', EVENTS, '*', 'n', int(n), 'c', int(count),
    'changes', table.concat(changes, '\n'))
  local step = math.max(1, math.floor(tonumber(EVENTS_MAX_CHANGES) / 64))
  if math.floor(count / step) > math.floor((count - n) / step) then
    redis.call('RPUSH', EVENTS_MARKS, eid .. ' ' .. int(count))
    trim_events(count)
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

-- fleet-wide counters for /metrics (app/core/metrics.py reads them): tallied while the script
-- runs and written by done() as one HINCRBY per distinct field, so a batch of 500 finishes on one
-- queue costs a handful of commands, and no round trip. Field names join their parts with '\n',
-- which no queue or tenant name holds.
local tallies, sums = {}, {}
local function tally(field, n)
  tallies[field] = (tallies[field] or 0) + (n or 1)
end

-- job durations as a histogram: one counter per bucket (its upper bound, in seconds), plus a sum;
-- keep in step with DURATION_BUCKETS in app/core/metrics.py
local DURATION_BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}
local function observe_duration(queue, seconds)
  local le = '+Inf'
  for _, bound in ipairs(DURATION_BUCKETS) do
    if seconds <= bound then
      le = tostring(bound)
      break
    end
  end
  tally('duration\n' .. queue .. '\n' .. le)
  local field = 'duration_sum\n' .. queue
  sums[field] = (sums[field] or 0) + seconds
end

local function done(reply)
  write_gauges()
  for field, n in pairs(tallies) do
    redis.call('HINCRBY', METRICS, field, int(n))
  end
  for field, x in pairs(sums) do
    redis.call('HINCRBYFLOAT', METRICS, field, string.format('%.6f', x))
  end
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
