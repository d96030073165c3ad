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

-- the tenant's submissions in the rolling minute before `now` (ms): {used, buckets oldest first
-- as {second, count}}; buckets that left the window are deleted
local function rpm_window(tenant, now)
  local key = TENANT .. tenant .. ':rpm'
  local second = math.floor(now / 1000)
  local flat = redis.call('HGETALL', key)
  local used, buckets, old = 0, {}, {}
  for j = 1, #flat, 2 do
    local s, n = tonumber(flat[j]), tonumber(flat[j + 1])
    if s <= second - RPM_WINDOW_S then
      old[#old + 1] = flat[j]
    else
      used = used + n
      buckets[#buckets + 1] = {s, n}
    end
  end
  if #old > 0 then
    redis.call('HDEL', key, unpack(old))
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return used, buckets
end

-- ms from `now` until `need` of the counted submissions have left the window
local function rpm_frees_in(buckets, need, now)
  local freed = 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if freed >= need then
      return math.max(0, (b[1] + RPM_WINDOW_S) * 1000 - now)
    end
  end
  return RPM_WINDOW_S * 1000
end

local function count_rpm(tenant, n, now)
  local key = TENANT .. tenant .. ':rpm'
  redis.call('HINCRBY', key, int(now / 1000), int(n))
  redis.call('EXPIRE', key, int(RPM_WINDOW_S + 1))
end
