-- head.lua: the KEYS/ARGV head every Tide script is called with (built once by app/core/scripts.py)
-- and the small helpers every script uses. A script gets only the top-level definitions of an
-- include that it reaches (app/core/scripts.py): keep each one a `local` at column 0.
-- KEYS[1] the key prefix (default '{tide}'): every key below is built from it, as
--   app/core/keys.py builds them (tests/app/core/test_keys.py holds the two in step). It carries
--   the hash tag, so declaring it routes the call to the deployment's one Redis Cluster slot.
-- ARGV[1] events max changes  ARGV[2] dead maxlen  ARGV[3] result ttl (s)
-- A script's own arguments start at ARGV[FIRST]. Few, short head arguments: each one costs the
-- client and Redis on every call. A batch of records travels as ONE argument, a JSON array of
-- every field of every record in a row, each a string: the client then encodes one argument per
-- call instead of several per job, and cjson splits it in C, several times faster than Lua can.
-- What a call costs (callgrind, Redis 7.0): the script's whole text runs on every call, so all
-- it defines is paid each time, used or not: ~0.5k instructions a closure, ~0.45k each local
-- that closures capture, ~0.65k a string built with `..`, ~0.7k a table, ~1.7k a
-- string.format, ~3k a redis.call before the command's own work. Hence one key name a line
-- below (a script gets only the names it reaches) and few, small top-level helpers.
local P = KEYS[1]
local DELAYED = P .. ':delayed'
local EVENTS = P .. ':events'
local SCHEDULED = P .. ':scheduled'
local QUEUES = P .. ':queues'
local WORKERS = P .. ':workers'
local SEEN = P .. ':workers:seen'
local METRICS = P .. ':metrics' -- fleet-wide counters, see done.lua's tally
local JOB = P .. ':job:'
local QUEUE = P .. ':q:'
local DEAD = P .. ':dead:'
local TENANT = P .. ':tenant:' -- a tenant's keys are TENANT .. tenant .. ':active' and the like
local GROUP = 'workers' -- app.core.keys.GROUP
local EVENTS_MAX_CHANGES, DEAD_MAXLEN, RESULT_TTL = ARGV[1], ARGV[2], ARGV[3]
local FIRST = 4

local unpack = unpack or table.unpack

-- milliseconds on the Redis server's clock: the only clock due times and timestamps use
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function records(packed)
  return cjson.decode(packed)
end

local function fmt(ms)
  return string.format('%.3f', ms)
end

-- an integer as the text Redis is sent: redis.call formats a Lua number with '%.17g', a float
-- printer that costs more than a light command (and `..` formats with '%.14g'). Even '%d'
-- costs ~1.7k instructions, so 1, the count a single submit or finish sends, skips it.
local function int(n)
  if n == 1 then
    return '1'
  end
  return string.format('%d', n)
end

-- a flat {name, value, name, value, ...} reply (XINFO) as a table
local function as_map(flat)
  local out = {}
  for j = 1, #flat, 2 do
    out[flat[j]] = flat[j + 1]
  end
  return out
end
