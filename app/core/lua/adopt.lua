-- adopt.lua: the leases this consumer holds although it may not know it: its pending entries
-- whose job names it as the runner. After a start or claim whose reply was lost, the worker
-- takes these over as they are (same token), so a lost reply does not cost an attempt.
-- ARGV[FIRST] consumer, +1 most entries to look at per queue, +2 queue names (packed as records)
-- Returns the leases (as start.lua, current token).
--!include fence
local consumer, limit = ARGV[FIRST], ARGV[FIRST + 1]
local out = {}
for _, queue in ipairs(records(ARGV[FIRST + 2])) do
  local pending = redis.call('XPENDING', QUEUE .. queue, GROUP, '-', '+', limit, consumer)
  for _, p in ipairs(pending) do
    local entry = redis.call('XRANGE', QUEUE .. queue, p[1], p[1])[1]
    if entry then
      local lease = own_lease(p[1], entry[2][2], queue, consumer)
      if lease then
        out[#out + 1] = lease
      end
    end
  end
end
return out
