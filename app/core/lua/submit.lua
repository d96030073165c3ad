-- submit.lua: admit requests against their tenant's limits and idempotency keys, then create
-- their jobs, pending or scheduled. Each request is all-or-nothing; requests are independent, so
-- many clients' requests travel in one call (the API's group commit), each with its own verdict.
-- ARGV[FIRST] idempotency TTL (s), +1 the rank a tenant's recent-jobs index is trimmed below:
--   -(most jobs kept + 1), +2 the requests, packed: per request a head of five fields (the tenant
--   whose limits apply, its rpm limit and active limit ('' = none), 1 when the ids were given
--   by the caller and must be checked, job count n) then n records of eleven fields (id,
--   tenant, queue, type, payload JSON, max_attempts, timeout_s, delay_ms, run_at_ms (absolute,
--   server clock; '' = use delay_ms), idempotency key ('' = none), request fingerprint)
-- Returns per request either {'ok', rpm limit, rpm remaining, ms until a slot frees, jobs}
-- with per job {id, status, created_at, run_at or '', 1 if replayed (the id is the original's)}
-- or a refusal that changed nothing for that request (see REPLY_ERRORS in app/core/errors.py):
-- {'exists', id} · {'idempotency_mismatch', key} · {'over_rpm', limit, remaining, ms until a
-- slot frees, ms until the request would fit} · {'over_active', limit, active, requested}
--!include transitions
local IDEM = P .. ':idem:' -- Keys.idempotency: IDEM .. tenant .. ':' .. key
local IDEM_TTL, TRIM_BELOW = ARGV[FIRST], ARGV[FIRST + 1]
local r = records(ARGV[FIRST + 2])
local now = now_ms()
local created = fmt(now)
local queues, made, grown = {}, {}, {} -- made: tenant -> jobs of this request; grown: indexes

-- the job an idempotency key already names, by an earlier call or an earlier request of this
-- one: {id, fingerprint} or nil
local function prior(tenant, key)
  local f = redis.call('HMGET', IDEM .. tenant .. ':' .. key, 'job', 'fp')
  if f[1] then
    return {f[1], f[2]}
  end
end

-- nil when the request may go ahead (then also the fresh job count and the tenant's rolling
-- minute), else its refusal; `replays` gets the original ids by record position
local function admit(tenant, rpm, max_active, check_ids, first, n, replays)
  local fresh, keys, ids = 0, {}, {}
  for i = first, first + (n - 1) * 11, 11 do
    local key, fp = r[i + 9], r[i + 10]
    local earlier = key ~= '' and (keys[r[i + 1] .. ':' .. key] or prior(r[i + 1], key))
    if earlier then
      if earlier[2] ~= fp then
        return {'idempotency_mismatch', key}
      end
      replays[i] = earlier[1]
    else
      if key ~= '' then
        keys[r[i + 1] .. ':' .. key] = {r[i], fp}
      end
      if check_ids == '1' and (ids[r[i]] or redis.call('EXISTS', JOB .. r[i]) == 1) then
        return {'exists', r[i]}
      end
      ids[r[i]] = true
      fresh = fresh + 1
    end
  end
  if max_active ~= '' and fresh > 0 then
    local active = active_count(tenant)
    if active + fresh > tonumber(max_active) then
      return {'over_active', max_active, active, fresh}
    end
  end
  local used, buckets = 0, {}
  if rpm ~= '' then
    local limit = tonumber(rpm)
    used, buckets = rpm_window(tenant, now)
    if fresh > 0 and used + fresh > limit then
      return {'over_rpm', limit, math.max(0, limit - used), rpm_frees_in(buckets, 1, now),
        rpm_frees_in(buckets, used + fresh - limit, now)}
    end
  end
  return nil, fresh, used, buckets
end

local function create(i)
  local id, tenant, queue = r[i], r[i + 1], r[i + 2]
  if not queues[queue] then
    redis.call('SADD', QUEUES, queue)
    queues[queue] = true
  end
  local due = tonumber(r[i + 8]) or now + tonumber(r[i + 7])
  local status, field, value
  if due > now then
    status, field, value = 'scheduled', 'run_at', fmt(due)
    schedule(id, nil, queue, tenant, due)
  else
    status, field, value = 'pending', 'entry', enqueue(id, nil, queue, tenant)
  end
  local record = {'id', id, 'tenant', tenant, 'queue', queue, 'type', r[i + 3],
    'payload', r[i + 4], 'attempts', '0', 'max_attempts', r[i + 5], 'timeout_s', r[i + 6],
    'created_at', created, 'status', status, field, value}
  local key = r[i + 9]
  if key ~= '' then
    local full = IDEM .. tenant .. ':' .. key
    record[23], record[24] = 'idempotency_key', key -- written with the record: one HSET
    redis.call('HSET', full, 'job', id, 'fp', r[i + 10])
    redis.call('EXPIRE', full, IDEM_TTL)
  end
  redis.call('HSET', JOB .. id, unpack(record))
  redis.call('ZADD', TENANT .. tenant .. ':jobs', created, id)
  made[tenant] = (made[tenant] or 0) + 1
  return {id, status, created, status == 'scheduled' and value or '', 0}
end

-- the recent-jobs index keeps at most LIST_INDEX_MAX entries, and a tenant quiet for RESULT_TTL
-- (when its every job record has expired) leaves no index behind. Entries of expired records
-- in between are dropped by the listing that meets them (list_jobs.lua).
local function trim_index(tenant)
  local index = TENANT .. tenant .. ':jobs'
  redis.call('EXPIRE', index, RESULT_TTL)
  -- all but the newest LIST_INDEX_MAX: a no-op while under, so no ZCARD is needed to decide
  redis.call('ZREMRANGEBYRANK', index, '0', TRIM_BELOW)
end

local out = {}
local i = 1
while i < #r do
  local tenant, rpm, max_active, check_ids, n = r[i], r[i + 1], r[i + 2], r[i + 3], tonumber(r[i + 4])
  local first = i + 5
  local replays = {}
  local refusal, fresh, used, buckets = admit(tenant, rpm, max_active, check_ids, first, n, replays)
  if refusal then
    out[#out + 1] = refusal
  else
    local jobs = {}
    for j = first, first + (n - 1) * 11, 11 do
      if replays[j] then
        jobs[#jobs + 1] = {replays[j], '', '', '', 1}
      else
        jobs[#jobs + 1] = create(j)
      end
    end
    -- taken per request: the next request of this call must see these jobs as active
    for owner, count in pairs(made) do
      take_active(owner, count)
      grown[owner] = true
    end
    made = {}
    local remaining, reset = -1, 0
    if rpm ~= '' then
      if fresh > 0 then
        count_rpm(tenant, fresh, now)
        buckets[#buckets + 1] = {math.floor(now / 1000), fresh}
      end
      remaining = math.max(0, tonumber(rpm) - used - fresh)
      reset = #buckets > 0 and rpm_frees_in(buckets, 1, now) or 0
    end
    out[#out + 1] = {'ok', rpm, remaining, reset, jobs}
  end
  i = first + n * 11
end
for tenant in pairs(grown) do
  trim_index(tenant)
end
return done(out)
