-- retry.lua: run a failed or cancelled job again, from its first attempt. It takes an active
-- slot of its tenant again, so the tenant's limit is checked as for a submission.
-- ARGV[FIRST] job id, +1 tenant ('' = any tenant), +2 the tenant's active limit ('' = none)
-- Returns 'pending'; refuses, changing nothing, with {'not_found', id},
-- {'not_retryable', id, status} or {'over_active', limit, active, 1}.
--!include transitions
local id, tenant, max_active = ARGV[FIRST], ARGV[FIRST + 1], ARGV[FIRST + 2]
local key = JOB .. id
local f = redis.call('HMGET', key, 'status', 'queue', 'tenant')
local status, queue, owner = f[1], f[2], f[3]
if not status or (tenant ~= '' and owner ~= tenant) then
  return {'not_found', id}
end
if status ~= 'failed' and status ~= 'cancelled' then
  return {'not_retryable', id, status}
end
if max_active ~= '' then
  local active = active_count(owner)
  if active + 1 > tonumber(max_active) then
    return {'over_active', max_active, active, 1}
  end
end
redis.call('PERSIST', key)
redis.call('HDEL', key, 'error', 'result', 'started_at', 'finished_at', 'worker', 'cancel',
  'run_at')
take_active(owner, 1)
redis.call('SADD', QUEUES, queue)
local eid = enqueue(id, status, queue, owner)
redis.call('HSET', key, 'status', 'pending', 'attempts', 0, 'entry', eid)
return done('pending')
