-- register.lua: keep this worker's entry in the live registry and drop workers gone silent.
-- ARGV[FIRST] worker id, +1 description (JSON; '' = deregister), +2 silence that counts as dead (ms)
-- Returns the number of dead workers removed.
--!include head
local id, info = ARGV[FIRST], ARGV[FIRST + 1]
local now = now_ms()
if info == '' then
  redis.call('HDEL', WORKERS, id)
  redis.call('ZREM', SEEN, id)
else
  redis.call('HSET', WORKERS, id, info)
  redis.call('ZADD', SEEN, now, id)
end
local dead = redis.call('ZRANGEBYSCORE', SEEN, '-inf', now - tonumber(ARGV[FIRST + 2]))
for _, w in ipairs(dead) do
  redis.call('HDEL', WORKERS, w)
  redis.call('ZREM', SEEN, w)
end
return #dead
