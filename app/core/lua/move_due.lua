-- move_due.lua: move jobs whose due time has come from the delayed set into their streams.
-- Safe for every worker to run: each due job is moved once, in one script.
-- ARGV[FIRST] most jobs to move in one call
-- Returns {jobs moved, ms until the next job is due (-1: none)}
--!include transitions
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', DELAYED, '-inf', now, 'LIMIT', 0, ARGV[FIRST])
for _, id in ipairs(ids) do
  redis.call('ZREM', DELAYED, id)
  local key = JOB .. id
  local f = redis.call('HMGET', key, 'status', 'queue', 'tenant')
  if f[1] == 'scheduled' then
    redis.call('HINCRBY', SCHEDULED, f[2], -1)
    redis.call('HSET', key, 'status', 'pending', 'entry', enqueue(id, 'scheduled', f[2], f[3]))
  end
end
local nxt = redis.call('ZRANGE', DELAYED, 0, 0, 'WITHSCORES')
local wait = -1
if nxt[1] then
  wait = math.max(0, math.floor(tonumber(nxt[2]) - now))
end
return done({#ids, wait})
