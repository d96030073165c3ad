-- tenants.lua: a tenant's counters as the scripts keep them (key names: app/core/keys.py).
-- active: non-terminal jobs, taken by submit and retry, released by terminate, so it never drifts.
-- rpm: submissions per second for the last minute, a hash second -> count (rolling window),
-- summed up in ':rpm:summary', a hash of 'used' (the minute's count) and 'oldest' (its oldest
-- second).
--!include head

local RPM_WINDOW_S = 60

local function take_active(tenant, n)
  return redis.call('INCRBY', TENANT .. tenant .. ':active', int(n))
end

local function active_count(tenant)
  return tonumber(redis.call('GET', TENANT .. tenant .. ':active')) or 0
end

-- a record without a tenant (damaged) has nothing to release; a count below zero (jobs created
-- before counting began) heals to absent
local function release_active(tenant)
  if not tenant or tenant == '' then
    return
  end
  local key = TENANT .. tenant .. ':active'
  if redis.call('DECR', key) <= 0 then
    redis.call('DEL', key)
  end
end

-- the tenant's rolling minute before `now` (ms): {key, summary = the summary's key, since = the
-- last second outside it, used = submissions in it, oldest = its oldest second (nil: none),
-- added = submissions this call counted, counts = second -> submissions, read only when
-- needed}. The summary answers while its oldest second is inside the minute: one HMGET,
-- however many seconds the minute holds. Once a second has left it, the seconds are recounted and those outside deleted:
-- under steady load once a second, where reading 60 seconds on every request had cost more
-- than the rest of the request. One window serves a whole call (its requests share `now`;
-- count_rpm keeps it current, save_rpm writes it back).
local function rpm_window(tenant, now)
  local key = TENANT .. tenant .. ':rpm'
  local since = math.floor(now / 1000) - RPM_WINDOW_S
  local window = {key = key, summary = key .. ':summary', since = since, used = 0, added = 0}
  local summed = redis.call('HMGET', window.summary, 'used', 'oldest')
  local oldest = tonumber(summed[2])
  if oldest and oldest > since then
    window.used, window.oldest = tonumber(summed[1]), oldest
    return window
  end
  local flat = redis.call('HGETALL', key)
  local counts, old = {}, nil
  for j = 1, #flat, 2 do
    local s = tonumber(flat[j])
    if s <= since then
      old = old or {}
      old[#old + 1] = flat[j]
    else
      local n = tonumber(flat[j + 1])
      counts[s] = n
      window.used = window.used + n
      window.oldest = math.min(window.oldest or s, s)
    end
  end
  if old then
    redis.call('HDEL', key, unpack(old))
  end
  window.counts, window.recounted = counts, true
  return window
end

-- the window's seconds: the summary holds only their sum
local function rpm_counts(window, now)
  if not window.counts then
    local counts, flat = {}, redis.call('HGETALL', window.key)
    for j = 1, #flat, 2 do
      counts[tonumber(flat[j])] = tonumber(flat[j + 1])
    end
    local second = math.floor(now / 1000)
    counts[second] = (counts[second] or 0) + window.added
    window.counts = counts
  end
  return window.counts
end

-- ms from `now` until the window's oldest submission leaves it (0: it holds none)
local function rpm_reset(window, now)
  return window.oldest and math.max(0, (window.oldest + RPM_WINDOW_S) * 1000 - now) or 0
end

-- ms from `now` until `need` of the window's submissions have left it (a second counted ahead
-- of the clock, after the clock stepped back, leaves last: the full minute)
local function rpm_frees_in(window, need, now)
  local freed, counts = 0, rpm_counts(window, now)
  for s = window.since + 1, window.since + RPM_WINDOW_S do
    freed = freed + (counts[s] or 0)
    if freed >= need then
      return math.max(0, (s + RPM_WINDOW_S) * 1000 - now)
    end
  end
  return RPM_WINDOW_S * 1000
end

-- counted in the call's window; written once per call by save_rpm
local function count_rpm(window, n, now)
  local second = math.floor(now / 1000)
  if window.counts then
    window.counts[second] = (window.counts[second] or 0) + n
  end
  window.used, window.added = window.used + n, window.added + n
  window.oldest = math.min(window.oldest or second, second)
end

-- the call's submissions and the summary; a minute left empty leaves no key behind
local function save_rpm(window, now)
  local key = window.key
  if window.added > 0 then
    redis.call('HINCRBY', key, int(math.floor(now / 1000)), int(window.added))
  elseif not window.recounted then
    return
  end
  if window.oldest then
    redis.call('HSET', window.summary, 'used', int(window.used), 'oldest', int(window.oldest))
    redis.call('EXPIRE', key, int(RPM_WINDOW_S + 1))
    redis.call('EXPIRE', window.summary, int(RPM_WINDOW_S + 1))
  else
    redis.call('DEL', key, window.summary)
  end
end
