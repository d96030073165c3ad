-- claim.lua: take over entries whose lease ran out (their worker died) and begin new attempts.
-- XAUTOCLAIM also returns this consumer's own idle entries (its event loop was blocked longer
-- than a lease): those whose job still names this consumer as runner are handed back as they
-- are, without a new attempt, so a worker never steals its own live lease.
-- ARGV[FIRST] consumer, +1 queue, +2 min idle (ms), +3 cursor, +4 count
-- Returns {next cursor, started jobs (as start.lua), entry ids that were deleted while pending,
--   own jobs (as start.lua, current token)}
--!include fence
--!include transitions
local consumer, queue = ARGV[FIRST], ARGV[FIRST + 1]
local stream = QUEUE .. queue
local r = redis.call('XAUTOCLAIM', stream, GROUP, consumer, ARGV[FIRST + 2], ARGV[FIRST + 3],
  'COUNT', ARGV[FIRST + 4])
local now = now_ms()
local out, own = {}, {}
for _, entry in ipairs(r[2]) do
  local held = own_lease(entry[1], entry[2][2], queue, consumer)
  if held then
    own[#own + 1] = held
  else
    local job = start_job(stream, entry[1], entry[2][2], queue, consumer, now, false)
    if job then
      out[#out + 1] = job
    end
  end
end
if #out > 0 then
  tally('reclaimed', #out)
end
return done({r[1], out, r[3] or {}, own})
