-- done.lua: what a state-changing script collects while it runs and writes once at its end.
-- Every script that changes state ends with `return done(reply)`.
--!include head

-- status changes are collected and appended as ONE events-stream entry per script call:
-- fields n (count) and changes (four fields per change: job id, status, queue, tenant).
local changes = {}
local function emit(id, status, queue, tenant)
  local n = #changes
  changes[n + 1], changes[n + 2], changes[n + 3], changes[n + 4] = id, status, queue, tenant or ''
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
    redis.call('XADD', EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*',
      'n', #changes / 4, 'changes', table.concat(changes, '\n'))
  end
  return reply
end
