-- scaler_resign.lua: give the lock up on a graceful stop, so a standby takes over at its next
-- poll rather than after the TTL. Only the holder of leadership `fence` may.
-- ARGV[FIRST] fence
-- Returns 1 (released) or 0 (it was not ours)
--!include scaler_head
if not leads(ARGV[FIRST]) then
  return 0
end
redis.call('DEL', LEADER)
return 1
