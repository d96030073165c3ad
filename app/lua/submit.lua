-- submit.lua: create jobs and enqueue them, or schedule them when they are due later.
-- ARGV[FIRST..]: nine per job: id, tenant, queue, type, payload (JSON), max_attempts, timeout_s,
--   delay_ms, run_at_ms (absolute, server clock; 0 = use delay_ms)
-- Returns per job {status, created_at, run_at or ''}, or {'exists'} when the id is taken.
--!include _lib
local now = now_ms()
local out = {}
for i = FIRST, #ARGV, 9 do
  local id, tenant, queue = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local key = JOB .. id
  if redis.call('EXISTS', key) == 1 then
    out[#out + 1] = {'exists'}
  else
    local run_at = tonumber(ARGV[i + 8])
    local due = run_at > 0 and run_at or now + tonumber(ARGV[i + 7])
    redis.call('HSET', key, 'id', id, 'tenant', tenant, 'queue', queue, 'type', ARGV[i + 3],
      'payload', ARGV[i + 4], 'attempts', 0, 'max_attempts', ARGV[i + 5],
      'timeout_s', ARGV[i + 6], 'created_at', fmt(now))
    redis.call('SADD', QUEUES, queue)
    if due > now then
      redis.call('HSET', key, 'status', 'scheduled', 'run_at', fmt(due))
      schedule(key, id, queue, tenant, due)
      out[#out + 1] = {'scheduled', fmt(now), fmt(due)}
    else
      enqueue(key, id, queue, tenant)
      out[#out + 1] = {'pending', fmt(now), ''}
    end
  end
end
return out
