-- fence.lua: does this consumer still hold this attempt's lease?
--!include head

-- the fence: the lease still belongs to this consumer and this attempt. Every script that moves
-- an entry to another owner or ends the attempt also changes the job record in the same atomic
-- step: a transfer (XAUTOCLAIM in claim.lua, then start_job) sets 'worker' and bumps 'attempts';
-- anything else leaves 'running' (finish, release, dead-letter, cancel on reclaim). So checking
-- status, worker and attempts checks the pending list's owner without an XPENDING per job.
-- Returns the job's {status, attempts, worker, tenant, max_attempts, cancel, started_at} when it
-- holds.
local function holds_lease(key, consumer, token)
  local f = redis.call('HMGET', key, 'status', 'attempts', 'worker', 'tenant', 'max_attempts',
    'cancel', 'started_at')
  if f[1] ~= 'running' or f[2] ~= token or f[3] ~= consumer then
    return false, f
  end
  return f
end

-- the lease of an entry whose job names this consumer as its runner (a reply to start or claim
-- that never arrived, or an entry idle because this worker's event loop was blocked): handed
-- back as start.lua returns it, with its current token, so no new attempt begins.
local function own_lease(eid, id, queue, consumer)
  local f = redis.call('HMGET', JOB .. id, 'status', 'worker', 'entry', 'attempts', 'type',
    'payload', 'timeout_s', 'max_attempts', 'tenant')
  if f[1] ~= 'running' or f[2] ~= consumer or f[3] ~= eid then
    return false
  end
  return {eid, id, queue, f[4], f[5], f[6], f[7], f[8], f[9]}
end
