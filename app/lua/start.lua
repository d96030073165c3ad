-- start.lua: begin attempts on entries this consumer has just leased with XREADGROUP.
-- ARGV[FIRST] consumer; then three per entry: queue, entry id, job id
-- Returns the started jobs: {entry, id, queue, token, type, payload, timeout_s, max_attempts}
--!include _lib
local consumer = ARGV[FIRST]
local now = now_ms()
local out = {}
for i = FIRST + 1, #ARGV, 3 do
  local queue = ARGV[i]
  local job = start_job(QUEUE .. queue, ARGV[i + 1], ARGV[i + 2], queue, consumer, now)
  if job then
    out[#out + 1] = job
  end
end
return out
