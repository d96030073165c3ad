-- finish.lua: end attempts, fenced: record the outcome, ack and delete the entry.
-- ARGV[FIRST] consumer; then seven per attempt: queue, entry id, job id, token,
--   outcome ('ok' | 'error' | 'cancelled'), data (result or error JSON),
--   retry delay in ms (-1: the error is not retryable)
-- An error with attempts left becomes 'scheduled' for a retry; otherwise 'failed' and dead-lettered.
-- A job whose cancel was asked ends 'cancelled' whatever the outcome, unless it succeeded.
-- Returns per attempt 1 (recorded) or 0 (lease lost: the outcome was discarded).
--!include _lib
local consumer = ARGV[FIRST]
local now = now_ms()
local out = {}
for i = FIRST + 1, #ARGV, 7 do
  local queue, eid, id, token = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local outcome, data, delay = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local stream, key = QUEUE .. queue, JOB .. id
  if holds_lease(stream, eid, key, consumer, token) then
    drop_entry(stream, eid)
    local f = redis.call('HMGET', key, 'tenant', 'max_attempts', 'cancel')
    if outcome == 'ok' then
      terminate(key, id, 'succeeded', queue, f[1], now, 'result', data)
    elseif outcome == 'cancelled' or f[3] == '1' then
      terminate(key, id, 'cancelled', queue, f[1], now, 'error', data)
    elseif delay >= 0 and tonumber(token) < tonumber(f[2]) then
      redis.call('HSET', key, 'status', 'scheduled', 'error', data, 'run_at', fmt(now + delay))
      redis.call('HDEL', key, 'entry')
      schedule(key, id, queue, f[1], now + delay)
    else
      dead_letter(key, id, queue, f[1], data, token, now)
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
