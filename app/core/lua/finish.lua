-- finish.lua: end attempts, fenced: record the outcome, ack and delete the entry.
-- ARGV[FIRST] consumer, +1 records of seven fields per attempt: queue, entry id, job id, token,
--   outcome ('ok' | 'error' | 'cancelled'), data (result or error JSON),
--   retry delay in ms (-1: the error is not retryable)
-- An error with attempts left becomes 'scheduled' for a retry; otherwise 'failed' and dead-lettered.
-- A job whose cancel was asked ends 'cancelled' whatever the outcome, unless it succeeded.
-- Returns per attempt 1 (recorded), 2 (already recorded by this very attempt: the reply to an
-- earlier call was lost and the worker sent the batch again) or 0 (lease lost: the outcome was
-- discarded).
--!include fence
--!include transitions
local consumer = ARGV[FIRST]
local r = records(ARGV[FIRST + 1])
local now = now_ms()
local out = {}
for i = 1, #r, 7 do
  local queue, eid, id, token = r[i], r[i + 1], r[i + 2], r[i + 3]
  local outcome, data, delay = r[i + 4], r[i + 5], tonumber(r[i + 6])
  local stream, key = QUEUE .. queue, JOB .. id
  local f, seen = holds_lease(key, consumer, token)
  if f then
    drop_entry(stream, eid)
    local tenant = f[4]
    observe_duration(queue, math.max(0, now - (tonumber(f[7]) or now)) / 1000)
    if outcome == 'ok' then
      redis.call('HDEL', key, 'error', 'cancel') -- a success leaves no earlier error or request
      terminate(key, id, 'running', 'succeeded', queue, tenant, now, 'result', data)
    elseif outcome == 'cancelled' or f[6] == '1' then
      terminate(key, id, 'running', 'cancelled', queue, tenant, now, 'error', data)
    elseif delay >= 0 and tonumber(token) < (tonumber(f[5]) or 1) then
      redis.call('HSET', key, 'status', 'scheduled', 'error', data, 'run_at', fmt(now + delay))
      schedule(id, 'running', queue, tenant, now + delay)
    else
      dead_letter(key, id, 'running', queue, tenant, data, token, now)
    end
    out[#out + 1] = 1
  elseif seen[1] and seen[3] == consumer and seen[2] == token then
    out[#out + 1] = 2 -- no longer running, yet still this attempt's: its outcome was recorded
  else
    tally('lease_lost')
    out[#out + 1] = 0
  end
end
return done(out)
