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
-- The requests are walked here in the main chunk rather than in helper closures, and a table a
-- request may not need is made when it does: every closure, captured local and table costs
-- each call, which shows on a lone single submit (see head.lua).
--!include transitions
local IDEM = P .. ':idem:' -- Keys.idempotency: IDEM .. tenant .. ':' .. key
local IDEM_TTL, TRIM_BELOW = ARGV[FIRST], ARGV[FIRST + 1]
local r = records(ARGV[FIRST + 2])
local now = now_ms()
local created = fmt(now)
local out, queues = {}, {}
-- a tenant's counters are read once per call, kept current here as its requests are admitted,
-- and written once at the end: active_of (tenant -> active jobs, as of the call's end),
-- taken (tenant -> the jobs this call made for it), windows (tenant -> its rolling minute)
local active_of, taken, windows = {}, {}, {}
local i = 1
while i < #r do
  local tenant, rpm, max_active, check_ids = r[i], r[i + 1], r[i + 2], r[i + 3]
  local first = i + 5
  local last = first + (tonumber(r[i + 4]) - 1) * 11
  i = last + 11

  -- admission, which changes nothing: each record is either the replay of the job its
  -- idempotency key already names (replays: record position -> that job's id), by an earlier
  -- call or an earlier record of this request (named), or a fresh job; then the tenant's limits
  local refusal, fresh, replays, named, ids = nil, 0, nil, nil, nil
  for j = first, last, 11 do
    local key, earlier = r[j + 9], nil
    if key ~= '' then
      local full = IDEM .. r[j + 1] .. ':' .. key
      named = named or {}
      earlier = named[full]
      if not earlier then
        local f = redis.call('HMGET', full, 'job', 'fp')
        earlier = f[1] and f
      end
      if earlier and earlier[2] ~= r[j + 10] then
        refusal = {'idempotency_mismatch', key}
        break
      elseif earlier then
        replays = replays or {}
        replays[j] = earlier[1]
      else
        named[full] = {r[j], r[j + 10]}
      end
    end
    if not earlier then
      if check_ids == '1' then
        ids = ids or {}
        if ids[r[j]] or redis.call('EXISTS', JOB .. r[j]) == 1 then
          refusal = {'exists', r[j]}
          break
        end
        ids[r[j]] = true
      end
      fresh = fresh + 1
    end
  end
  if not refusal and max_active ~= '' and fresh > 0 then
    active_of[tenant] = active_of[tenant] or active_count(tenant) + (taken[tenant] or 0)
    local active = active_of[tenant]
    if active + fresh > tonumber(max_active) then
      refusal = {'over_active', max_active, active, fresh}
    end
  end
  local window = nil -- the tenant's rolling minute (tenants.lua)
  if not refusal and rpm ~= '' then
    local limit = tonumber(rpm)
    window = windows[tenant] or rpm_window(tenant, now)
    windows[tenant] = window
    local used = window.used
    if fresh > 0 and used + fresh > limit then
      refusal = {'over_rpm', limit, math.max(0, limit - used), rpm_reset(window, now),
        rpm_frees_in(window, used + fresh - limit, now)}
    end
  end

  if refusal then
    out[#out + 1] = refusal
  else
    -- the jobs, in request order; made: tenant -> jobs created for it
    local jobs, made = {}, {}
    for j = first, last, 11 do
      local replay = replays and replays[j]
      if replay then
        jobs[#jobs + 1] = {replay, '', '', '', 1}
      else
        local id, owner, queue, key = r[j], r[j + 1], r[j + 2], r[j + 9]
        if not queues[queue] then
          redis.call('SADD', QUEUES, queue)
          queues[queue] = true
        end
        local due = tonumber(r[j + 8]) or now + tonumber(r[j + 7])
        local status, field, value
        if due > now then
          status, field, value = 'scheduled', 'run_at', fmt(due)
          schedule(id, nil, queue, owner, due)
        else
          status, field, value = 'pending', 'entry', enqueue(id, nil, queue, owner)
        end
        local record = {'id', id, 'tenant', owner, 'queue', queue, 'type', r[j + 3],
          'payload', r[j + 4], 'attempts', '0', 'max_attempts', r[j + 5], 'timeout_s', r[j + 6],
          'created_at', created, 'status', status, field, value}
        if key ~= '' then
          local full = IDEM .. owner .. ':' .. key
          record[23], record[24] = 'idempotency_key', key -- written with the record: one HSET
          redis.call('HSET', full, 'job', id, 'fp', r[j + 10])
          redis.call('EXPIRE', full, IDEM_TTL)
        end
        redis.call('HSET', JOB .. id, unpack(record))
        redis.call('ZADD', TENANT .. owner .. ':jobs', created, id)
        made[owner] = (made[owner] or 0) + 1
        jobs[#jobs + 1] = {id, status, created, status == 'scheduled' and value or '', 0}
      end
    end
    -- the next request of this call sees these jobs as active
    for owner, count in pairs(made) do
      taken[owner] = (taken[owner] or 0) + count
      active_of[owner] = active_of[owner] and active_of[owner] + count
    end
    local remaining, reset = -1, 0
    if window then
      if fresh > 0 then
        count_rpm(window, fresh, now)
      end
      remaining = math.max(0, tonumber(rpm) - window.used)
      reset = rpm_reset(window, now)
    end
    out[#out + 1] = {'ok', rpm, remaining, reset, jobs}
  end
end

-- the recent-jobs index keeps at most LIST_INDEX_MAX entries (ranks below TRIM_BELOW go: a
-- no-op while under, so no ZCARD is needed to decide), and a tenant quiet for RESULT_TTL (when
-- its every job record has expired) leaves no index behind. Entries of expired records in
-- between are dropped by the listing that meets them (list_jobs.lua).
for owner, count in pairs(taken) do
  take_active(owner, count)
  local index = TENANT .. owner .. ':jobs'
  redis.call('EXPIRE', index, RESULT_TTL)
  redis.call('ZREMRANGEBYRANK', index, '0', TRIM_BELOW)
end
for _, window in pairs(windows) do
  save_rpm(window, now)
end
return done(out)
