-- extend.lua: extend the leases a worker still holds by resetting their idle time.
-- ARGV[FIRST] consumer, +1 records of four fields per lease: queue, entry id, job id, token
-- Returns per lease 0 (lost: another worker owns it now), 1 (extended), 2 (extended; cancel asked)
--!include fence
--!include done
local consumer = ARGV[FIRST]
local r = records(ARGV[FIRST + 1])
local out = {}
for i = 1, #r, 4 do
  local stream, eid = QUEUE .. r[i], r[i + 1]
  local f, seen = holds_lease(JOB .. r[i + 2], consumer, r[i + 3])
  if f then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, eid, 'JUSTID')
    out[#out + 1] = f[6] == '1' and 2 or 1
  else
    -- an attempt whose outcome was recorded since the beat began is not lost: it is over
    if not (seen[3] == consumer and seen[2] == r[i + 3]) then
      tally('lease_lost')
    end
    out[#out + 1] = 0
  end
end
return done(out)
