-- scaler_commit.lua: record a decision, fenced: only the scaler that still holds leadership
-- `fence` writes, so a paused ex-leader cannot overwrite its successor's memory.
-- ARGV[FIRST] fence, +1 state JSON, +2 decision JSON, +3 decision log maxlen (trimmed exactly:
-- one entry per poll costs nothing to trim, and '~' would not trim a short log at all)
-- Returns 1 (written) or 0 (fenced out: nothing written)
--!include scaler_head
if not leads(ARGV[FIRST]) then
  return 0
end
redis.call('SET', STATE, ARGV[FIRST + 1])
redis.call('XADD', DECISIONS, 'MAXLEN', ARGV[FIRST + 3], '*', 'decision', ARGV[FIRST + 2])
return 1
