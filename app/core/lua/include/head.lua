-- head.lua: the KEYS/ARGV head every Tide script is called with (built once by app/core/scripts.py)
-- and the small helpers every script uses.
-- KEYS[1] delayed zset      KEYS[2] events stream   KEYS[3] scheduled-count hash
-- KEYS[4] queue-name set    KEYS[5] worker hash     KEYS[6] worker last-seen zset
-- KEYS[7] metrics hash (fleet-wide counters, see done.lua's tally)
-- ARGV[1] job key prefix    ARGV[2] queue key prefix  ARGV[3] dead key prefix  ARGV[4] group
-- ARGV[5] events max changes  ARGV[6] dead maxlen     ARGV[7] result ttl (s)
-- ARGV[8] tenant key prefix (a tenant's keys are TENANT .. tenant .. ':active' and the like)
-- A script's own arguments start at ARGV[FIRST]. A batch of records travels as ONE argument,
-- fields joined by newlines (JSON is compact and names are checked, so no field holds one):
-- the client then encodes one argument per call instead of several per job.
local DELAYED, EVENTS, SCHEDULED, QUEUES, WORKERS, SEEN = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local METRICS = KEYS[7]
local JOB, QUEUE, DEAD, GROUP = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local EVENTS_MAX_CHANGES, DEAD_MAXLEN, RESULT_TTL = ARGV[5], ARGV[6], ARGV[7]
local TENANT = ARGV[8]
local FIRST = 9

local unpack = unpack or table.unpack

-- milliseconds on the Redis server's clock: the only clock due times and timestamps use
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function records(packed)
  local out, i = {}, 1
  while true do
    local j = string.find(packed, '\n', i, true)
    if not j then
      out[#out + 1] = string.sub(packed, i)
      return out
    end
    out[#out + 1] = string.sub(packed, i, j - 1)
    i = j + 1
  end
end

local function fmt(ms)
  return string.format('%.3f', ms)
end

-- a flat {name, value, name, value, ...} reply (XINFO) as a table
local function as_map(flat)
  local out = {}
  for j = 1, #flat, 2 do
    out[flat[j]] = flat[j + 1]
  end
  return out
end
