-- heartbeat.lua: extend the leases a worker still holds by resetting their idle time.
-- ARGV[FIRST] consumer; then four per lease: queue, entry id, job id, token
-- Returns per lease 0 (lost: another worker owns it now), 1 (extended), 2 (extended; cancel asked)
--!include _lib
local consumer = ARGV[FIRST]
local out = {}
for i = FIRST + 1, #ARGV, 4 do
  local stream, eid, key = QUEUE .. ARGV[i], ARGV[i + 1], JOB .. ARGV[i + 2]
  if holds_lease(stream, eid, key, consumer, ARGV[i + 3]) then
    redis.call('XCLAIM', stream, GROUP, consumer, 0, eid, 'JUSTID')
    out[#out + 1] = redis.call('HGET', key, 'cancel') == '1' and 2 or 1
  else
    out[#out + 1] = 0
  end
end
return out
