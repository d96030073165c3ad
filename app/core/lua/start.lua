-- start.lua: begin attempts on entries this consumer has just leased with XREADGROUP.
-- ARGV[FIRST] consumer, +1 records of three fields per entry: queue, entry id, job id
-- Returns the started jobs: {entry, id, queue, token, type, payload, timeout_s, max_attempts,
--   tenant}
--!include transitions
local consumer = ARGV[FIRST]
local now = now_ms()
local r = records(ARGV[FIRST + 1])
local out = {}
for i = 1, #r, 3 do
  local job = start_job(QUEUE .. r[i], r[i + 1], r[i + 2], r[i], consumer, now, true)
  if job then
    out[#out + 1] = job
  end
end
return done(out)
