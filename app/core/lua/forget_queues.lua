-- forget_queues.lua: forget queues that are empty and idle, so that a name sent once does not
-- stay in the queue-name set (and in every stats call) forever.
-- A queue is forgotten when nothing of it waits, runs or is scheduled, no live worker serves it
-- (the registry's 'queues'), and nothing was enqueued to it or delivered from it for the idle
-- time. Its name and scheduled count go, and its empty stream is deleted with the consumer
-- group (a worker that reads it again recreates the group on NOGROUP). A queue with dead letters
-- is kept: the dead-letter list and the queue figures find them through the queue's name.
-- ARGV[FIRST] cursor over the queue-name set ('0' to start), +1 names to look at, +2 idle (ms)
-- Returns {next cursor ('0': every name looked at), forgotten names}
--!include head

-- ms when the queue was last used (an enqueue or a worker's read), or false while it has work
local function last_used(queue, now)
  if tonumber(redis.call('HGET', SCHEDULED, queue) or '0') > 0
      or redis.call('EXISTS', DEAD .. queue) == 1 then
    return false
  end
  local stream = QUEUE .. queue
  if redis.call('EXISTS', stream) == 0 then
    return 0 -- only ever had scheduled jobs, now gone; or already forgotten
  end
  if redis.call('XLEN', stream) > 0 then
    return false
  end
  local info = as_map(redis.call('XINFO', 'STREAM', stream))
  local last = tonumber(string.match(info['last-generated-id'], '^(%d+)'))
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local group = as_map(g)
    if group['pending'] > 0 then
      return false -- entries deleted while pending: claim reports them first
    end
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group['name'])) do
      last = math.max(last, now - as_map(c)['idle'])
    end
  end
  return last
end

-- consumers' idle times cannot tell: Redis 7.0 counts an empty read as no use at all
local function served_queues()
  local served = {}
  for _, info in ipairs(redis.call('HVALS', WORKERS)) do
    local ok, worker = pcall(cjson.decode, info)
    if ok and type(worker) == 'table' and type(worker['queues']) == 'table' then
      for _, queue in ipairs(worker['queues']) do
        served[queue] = true
      end
    end
  end
  return served
end

local now = now_ms()
local idle = tonumber(ARGV[FIRST + 2])
local served = served_queues()
local scan = redis.call('SSCAN', QUEUES, ARGV[FIRST], 'COUNT', ARGV[FIRST + 1])
local forgotten = {}
for _, queue in ipairs(scan[2]) do
  local last = not served[queue] and last_used(queue, now)
  if last and now - last >= idle then
    redis.call('SREM', QUEUES, queue)
    redis.call('HDEL', SCHEDULED, queue)
    redis.call('DEL', QUEUE .. queue)
    forgotten[#forgotten + 1] = queue
  end
end
return {scan[1], forgotten}
