-- cancel.lua: cancel one job. Waiting jobs end 'cancelled' at once and are never started; a
-- running job is flagged and its worker stops it at its next heartbeat.
-- ARGV[FIRST] job id, +1 tenant ('' = any tenant)
-- Returns 'cancelled' or 'cancelling' (running; flagged); refuses, changing nothing, with
-- {'not_found', id} or {'finished', id, status} (see REPLY_ERRORS in app/core/errors.py).
--!include transitions
local id, tenant = ARGV[FIRST], ARGV[FIRST + 1]
local key = JOB .. id
local f = redis.call('HMGET', key, 'status', 'queue', 'tenant', 'entry')
local status, queue = f[1], f[2]
if not status or (tenant ~= '' and f[3] ~= tenant) then
  return {'not_found', id}
end
if status == 'pending' then
  local stream = QUEUE .. queue
  -- an entry already read by a worker stays: its start sees 'cancelled' and drops it.
  -- With no group yet (an error reply) nothing was ever read.
  local read = redis.pcall('XPENDING', stream, GROUP, f[4], f[4], 1)
  if read.err or #read == 0 then
    redis.call('XDEL', stream, f[4])
  end
elseif status == 'scheduled' then
  redis.call('ZREM', DELAYED, id)
  redis.call('HINCRBY', SCHEDULED, queue, -1)
elseif status == 'running' then
  redis.call('HSET', key, 'cancel', '1')
  return done('cancelling')
else
  return {'finished', id, status}
end
terminate(key, id, status, 'cancelled', queue, f[3], now_ms())
return done('cancelled')
