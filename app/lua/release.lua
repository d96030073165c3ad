-- release.lua: hand back leases at shutdown so another worker reclaims them at once.
-- The entry stays in this consumer's pending list but looks idle for a whole lease, so the next
-- XAUTOCLAIM of any worker takes it; its new attempt fences this worker out.
-- ARGV[FIRST] consumer, +1 idle to set (ms); then four per lease: queue, entry id, job id, token
-- Returns the number of leases released.
--!include _lib
local consumer, idle = ARGV[FIRST], ARGV[FIRST + 1]
local n = 0
for i = FIRST + 2, #ARGV, 4 do
  local stream, eid, id = QUEUE .. ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = JOB .. id
  if holds_lease(stream, eid, key, consumer, ARGV[i + 3]) then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, eid, 'IDLE', idle, 'JUSTID')
    redis.call('HSET', key, 'status', 'pending')
    emit(id, 'pending', ARGV[i], redis.call('HGET', key, 'tenant'))
    n = n + 1
  end
end
return n
