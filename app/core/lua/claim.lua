-- claim.lua: take over entries whose lease ran out (their worker died) and begin new attempts.
-- ARGV[FIRST] consumer, +1 queue, +2 min idle (ms), +3 cursor, +4 count
-- Returns {next cursor, started jobs (as start.lua), entry ids that were deleted while pending}
--!include transitions
local consumer, queue = ARGV[FIRST], ARGV[FIRST + 1]
local stream = QUEUE .. queue
local r = redis.call('XAUTOCLAIM', stream, GROUP, consumer, ARGV[FIRST + 2], ARGV[FIRST + 3],
  'COUNT', ARGV[FIRST + 4])
local now = now_ms()
local out = {}
for _, entry in ipairs(r[2]) do
  local job = start_job(stream, entry[1], entry[2][2], queue, consumer, now, false)
  if job then
    out[#out + 1] = job
  end
end
return done({r[1], out, r[3] or {}})
