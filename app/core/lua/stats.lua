-- stats.lua: per queue, what is waiting, running, scheduled and dead, read in one round trip.
-- Waiting is XLEN - pending (acked entries are deleted), right even where XINFO's lag is null.
-- ARGV[FIRST..] queue names
-- Throughput is a sliding-window estimate over the per-minute counts done.lua keeps: this
-- minute's count plus the previous minute's, weighted by how much of it the window still covers.
-- Returns per queue {waiting, running, scheduled, dead, oldest waiting age in ms (-1: none),
-- jobs finished over the last minute (text, one decimal)}
--!include head
local now = math.floor(now_ms())
local minute = math.floor(now / 60000)
local this_minute = EVENTS .. ':finished:' .. minute
local last_minute = EVENTS .. ':finished:' .. (minute - 1)
local last_weight = (60000 - now % 60000) / 60000
local out = {}
for i = FIRST, #ARGV do
  local queue = ARGV[i]
  local stream = QUEUE .. queue
  local len = redis.call('XLEN', stream)
  local pending, last = 0, '0-0'
  if len > 0 then
    local groups = redis.pcall('XINFO', 'GROUPS', stream)
    if type(groups) == 'table' and not groups.err then
      for _, g in ipairs(groups) do
        local info = as_map(g)
        if info['name'] == GROUP then
          pending, last = info['pending'], info['last-delivered-id']
        end
      end
    end
  end
  local age = -1
  local first = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)
  if first[1] then
    local ms = tonumber(string.match(first[1][1], '^(%d+)'))
    age = math.max(0, now - ms)
  end
  local scheduled = tonumber(redis.call('HGET', SCHEDULED, queue) or '0')
  local finished = tonumber(redis.call('HGET', this_minute, queue) or '0')
    + tonumber(redis.call('HGET', last_minute, queue) or '0') * last_weight
  out[#out + 1] = {math.max(0, len - pending), pending, scheduled,
    redis.call('XLEN', DEAD .. queue), age, string.format('%.1f', finished)}
end
return out
