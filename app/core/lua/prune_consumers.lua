-- prune_consumers.lua: remove consumers of dead workers from a queue's group, but only those
-- holding no pending entries: deleting one that holds entries would strand them forever.
-- ARGV[FIRST] queue, +1 idle (ms) past which an unregistered consumer counts as gone
-- Returns the number of consumers removed.
--!include head
local stream = QUEUE .. ARGV[FIRST]
local consumers = redis.pcall('XINFO', 'CONSUMERS', stream, GROUP)
if type(consumers) ~= 'table' or consumers.err then
  return 0
end
local n = 0
for _, c in ipairs(consumers) do
  local info = as_map(c)
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[FIRST + 1])
      and redis.call('HEXISTS', WORKERS, info['name']) == 0 then
    redis.call('XGROUP', 'DELCONSUMER', stream, GROUP, info['name'])
    n = n + 1
  end
end
return n
