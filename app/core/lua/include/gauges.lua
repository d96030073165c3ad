-- gauges.lua: each tenant's jobs by status, for GET /metrics, kept in the call that changes it.
-- pending, running, scheduled: fields '<tenant>\n<status>' of P:metrics:tenants (Keys.
-- tenant_gauges). A change moves a job from its old status to its new one in a table, and
-- write_gauges() (done.lua, at the end of the call) adds the net change with one HINCRBY per
-- tenant and status: a batch of 500 starts costs two commands. A count that would drop below
-- zero (jobs created before counting began) heals to absent, as a tenant's active count does,
-- and a zero is deleted, so a quiet tenant leaves nothing behind.
-- dead: the tenant's failed (dead-lettered) jobs whose record is still kept, so still
-- retryable: a sorted set job id -> when that record expires (ms), P:tenant:<t>:dead. Membership
-- follows the status, in and out, so it cannot drift; readers count only members whose time has
-- not come, the next failure prunes the others, and the key expires with its newest member.
--!include head

local TENANT_GAUGES = METRICS .. ':tenants'
local LIVE = {pending = true, running = true, scheduled = true}
local gauges = {}

local function shift(field, n)
  gauges[field] = (gauges[field] or 0) + n
end

-- job `id` of `tenant` went from status `from` (nil for a new job) to `to`
local function move(id, tenant, from, to)
  if from == to or not tenant or tenant == '' then
    return
  end
  if LIVE[from] then
    shift(tenant .. '\n' .. from, -1)
  end
  if LIVE[to] then
    shift(tenant .. '\n' .. to, 1)
  end
  local dead = TENANT .. tenant .. ':dead'
  if to == 'failed' then
    local now, ttl = now_ms(), tonumber(RESULT_TTL) * 1000
    redis.call('ZREMRANGEBYSCORE', dead, '-inf', now)
    redis.call('ZADD', dead, now + ttl, id)
    redis.call('PEXPIRE', dead, ttl)
  elseif from == 'failed' then
    redis.call('ZREM', dead, id)
  end
end

local function write_gauges()
  for field, n in pairs(gauges) do
    if n ~= 0 and redis.call('HINCRBY', TENANT_GAUGES, field, int(n)) <= 0 then
      redis.call('HDEL', TENANT_GAUGES, field)
    end
  end
end
