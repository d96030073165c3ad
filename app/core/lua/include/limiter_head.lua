-- limiter_head.lua: the KEYS/ARGV head of the limiter scripts (called by app/core/limiter.py).
-- KEYS[1] theoretical arrival time (string, ms on the server's clock)
-- KEYS[2] turns granted, scored by their time (sorted set: the limiter's usage)
-- ARGV[1] emission interval: ms between turns at the steady rate (period / count)
-- ARGV[2] burst: turns allowed at once beyond the steady rate
-- ARGV[3] period (ms): the window the limit counts over
-- A script's own arguments start at ARGV[FIRST].
local TAT, STARTS = KEYS[1], KEYS[2]
local INTERVAL, BURST, PERIOD = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local FIRST = 4

-- milliseconds on the Redis server's clock: every worker shares it
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- forget the turns that left the window, and count those in it: (now - period, now]
local function used(now)
  redis.call('ZREMRANGEBYSCORE', STARTS, '-inf', now - PERIOD)
  return redis.call('ZCOUNT', STARTS, '(' .. (now - PERIOD), now)
end
