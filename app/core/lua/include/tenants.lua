-- tenants.lua: a tenant's counters as the scripts keep them (key names: app/core/keys.py).
-- active: non-terminal jobs, taken by submit and retry, released by terminate, so it never drifts.
-- rpm: submissions per second for the last minute, a hash second -> count (rolling window).
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

-- the tenant's rolling minute before `now` (ms): {used = submissions in it, counts = second ->
-- submissions, since = the last second outside it, added = submissions this call counted};
-- seconds that left it are deleted. One read serves a whole call (its requests share `now`;
-- count_rpm keeps it current, save_rpm writes it back): under steady load the minute holds 60
-- seconds, and reading them per request of a group commit cost more than the rest of the
-- request. Seconds are looked up by number, never sorted.
local function rpm_window(tenant, now)
  local key = TENANT .. tenant .. ':rpm'
  local since = math.floor(now / 1000) - RPM_WINDOW_S
  local flat = redis.call('HGETALL', key)
  local used, counts, old = 0, {}, nil
  for j = 1, #flat, 2 do
    local s = tonumber(flat[j])
    if s <= since then
      old = old or {}
      old[#old + 1] = flat[j]
    else
      local n = tonumber(flat[j + 1])
      counts[s] = n
      used = used + n
    end
  end
  if old then
    redis.call('HDEL', key, unpack(old))
  end
  return {used = used, counts = counts, since = since, added = 0}
end

-- ms from `now` until `need` of the window's submissions have left it (a second counted ahead
-- of the clock, after the clock stepped back, leaves last: the full minute)
local function rpm_frees_in(window, need, now)
  local freed, counts = 0, window.counts
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
  window.counts[second] = (window.counts[second] or 0) + n
  window.used, window.added = window.used + n, window.added + n
end

local function save_rpm(tenant, window, now)
  local key = TENANT .. tenant .. ':rpm'
  redis.call('HINCRBY', key, int(math.floor(now / 1000)), int(window.added))
  redis.call('EXPIRE', key, int(RPM_WINDOW_S + 1))
end
