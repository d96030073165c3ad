-- release.lua: hand back leases at shutdown so another worker reclaims them at once.
-- The entry stays in this consumer's pending list but looks idle for a whole lease, so the next
-- XAUTOCLAIM of any worker takes it. The attempt is handed back (nothing failed: a job released
-- on its last attempt still runs); status 'pending' fences this worker out at once, and the
-- owner check keeps it out after the next attempt reuses the number.
-- ARGV[FIRST] consumer, +1 idle to set (ms), +2 records of four fields per lease:
--   queue, entry id, job id, token
-- Returns the number of leases released.
--!include fence
--!include done
local consumer, idle = ARGV[FIRST], ARGV[FIRST + 1]
local r = records(ARGV[FIRST + 2])
local n = 0
for i = 1, #r, 4 do
  local stream, eid, id = QUEUE .. r[i], r[i + 1], r[i + 2]
  local key = JOB .. id
  local f = holds_lease(key, consumer, r[i + 3])
  if f then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, eid, 'IDLE', idle, 'JUSTID')
    redis.call('HSET', key, 'status', 'pending', 'attempts', tonumber(r[i + 3]) - 1)
    emit(id, 'running', 'pending', r[i], f[4])
    n = n + 1
  end
end
return done(n)
