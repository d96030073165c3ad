-- limiter_take.lua: reserve the next turn of a rate limiter (GCRA), shared by every worker.
-- Turn k goes at max(now, TAT - burst * interval), and TAT moves on one interval per turn: so
-- any window of one period holds at most count + burst turns, however many workers ask.
-- A turn further ahead than the horizon is not reserved: the caller asks again later, so a
-- stopped or cancelled waiter never holds a turn far ahead.
-- ARGV[FIRST] horizon (ms): the furthest ahead a turn is reserved
-- Returns {1, ms until the reserved turn} or {0, ms after which a turn is within the horizon}.
--!include limiter_head
local horizon = tonumber(ARGV[FIRST])
local now = now_ms()
local tat = math.max(tonumber(redis.call('GET', TAT) or '0') or 0, now)
local turn = math.max(now, tat - BURST * INTERVAL)
local wait = turn - now
if wait > horizon then
  return {0, tostring(math.ceil(wait - horizon))}
end
local next_tat = tat + INTERVAL
-- both keys outlive the last turn by one period, then vanish: an idle limiter costs nothing
local ttl = math.ceil(next_tat - now + PERIOD)
redis.call('SET', TAT, string.format('%.3f', next_tat), 'PX', ttl)
-- the member is the TAT before this turn: it grows by one interval per turn, so it is unique
redis.call('ZADD', STARTS, turn, string.format('%.3f', tat))
redis.call('PEXPIRE', STARTS, ttl)
used(now)
return {1, tostring(wait)}
