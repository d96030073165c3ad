-- submit.lua: create jobs and enqueue them, or schedule them when they are due later.
-- ARGV[FIRST]: records of nine fields per job: id, tenant, queue, type, payload (JSON),
--   max_attempts, timeout_s, delay_ms, run_at_ms (absolute, server clock; '' = use delay_ms)
-- Returns per job {status, created_at, run_at or ''}; refuses the whole call, changing nothing,
-- with {'exists', id} when an id is taken or given twice.
--!include transitions
local r = records(ARGV[FIRST])
local taken = {}
for i = 1, #r, 9 do
  local id = r[i]
  if taken[id] or redis.call('EXISTS', JOB .. id) == 1 then
    return {'exists', id}
  end
  taken[id] = true
end
local now = now_ms()
local created = fmt(now)
local out, seen = {}, {}
for i = 1, #r, 9 do
  local id, tenant, queue = r[i], r[i + 1], r[i + 2]
  if not seen[queue] then
    redis.call('SADD', QUEUES, queue)
    seen[queue] = true
  end
  local due = tonumber(r[i + 8]) or now + tonumber(r[i + 7])
  local status, field, value
  if due > now then
    status, field, value = 'scheduled', 'run_at', fmt(due)
    schedule(id, queue, tenant, due)
  else
    status, field, value = 'pending', 'entry', enqueue(id, queue, tenant)
  end
  redis.call('HSET', JOB .. id, 'id', id, 'tenant', tenant, 'queue', queue, 'type', r[i + 3],
    'payload', r[i + 4], 'attempts', 0, 'max_attempts', r[i + 5], 'timeout_s', r[i + 6],
    'created_at', created, 'status', status, field, value)
  out[#out + 1] = {status, created, status == 'scheduled' and value or ''}
end
return done(out)
