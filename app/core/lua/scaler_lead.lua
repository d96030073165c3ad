-- scaler_lead.lua: become the acting scaler when nobody is, or stay it: take the lock when it is
-- free (a new fence), renew its TTL when it is ours. Also reads what the acting scaler needs.
-- ARGV[FIRST] lock TTL (ms)
-- Returns {fence ('' when another scaler leads), the leader's owner, server time (ms), state JSON
-- ('' when none yet)}
--!include scaler_head
local f = redis.call('HMGET', LEADER, 'owner', 'fence')
if not f[1] then
  local fence = redis.call('INCR', FENCE)
  redis.call('HSET', LEADER, 'owner', OWNER, 'fence', fence)
  f = {OWNER, tostring(fence)}
end
local fence = ''
if f[1] == OWNER then
  redis.call('PEXPIRE', LEADER, ARGV[FIRST])
  fence = f[2]
end
return {fence, f[1], tostring(server_ms()), redis.call('GET', STATE) or ''}
