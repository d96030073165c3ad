-- limiter_usage.lua: how many turns a rate limiter granted over its last period.
-- Returns that count (turns reserved for later are not counted until their time comes).
--!include limiter_head
return used(now_ms())
