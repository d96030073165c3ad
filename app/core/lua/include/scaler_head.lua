-- scaler_head.lua: the KEYS/ARGV head every scaler script is called with (built once by
-- app/core/scaler_state.py), and the fence that guards the acting scaler's writes.
-- KEYS[1] leader hash (owner, fence; expires)   KEYS[2] fence counter
-- KEYS[3] state string (JSON)                   KEYS[4] decisions stream
-- ARGV[1] owner: this scaler process's id
-- A script's own arguments start at ARGV[FIRST].
local LEADER, FENCE, STATE, DECISIONS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local OWNER = ARGV[1]
local FIRST = 2

-- milliseconds on the Redis server's clock: every scaler shares it, so a cooldown stamped by
-- one scaler means the same to the next
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- the fence: OWNER still holds the lock it took as leadership number `fence`
local function leads(fence)
  local f = redis.call('HMGET', LEADER, 'owner', 'fence')
  return f[1] == OWNER and f[2] == fence
end
