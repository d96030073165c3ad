-- transitions.lua: the job-record changes several scripts share: end (which frees the tenant's
-- active slot), dead-letter, schedule, enqueue, and begin an attempt. Each takes the status the
-- job leaves (`from`; nil for a new job), which emit hands to the tenant gauges.
--!include done
--!include tenants

local function terminate(key, id, from, status, queue, tenant, now, field, value)
  if field then
    redis.call('HSET', key, 'status', status, 'finished_at', fmt(now), field, value)
  else
    redis.call('HSET', key, 'status', status, 'finished_at', fmt(now))
  end
  redis.call('EXPIRE', key, RESULT_TTL)
  release_active(tenant)
  emit(id, from, status, queue, tenant)
  count_finished(queue)
  tally('jobs\n' .. queue .. '\n' .. status)
  tally('tenant\n' .. (tenant or '') .. '\n' .. status)
end

local function dead_letter(key, id, from, queue, tenant, err, attempts, now)
  redis.call('XADD', DEAD .. queue, 'MAXLEN', '~', DEAD_MAXLEN, '*',
    'job', id, 'error', err, 'attempts', attempts)
  tally('dead_lettered\n' .. queue)
  terminate(key, id, from, 'failed', queue, tenant, now, 'error', err)
end

local function schedule(id, from, queue, tenant, due)
  redis.call('ZADD', DELAYED, due, id)
  redis.call('HINCRBY', SCHEDULED, queue, 1)
  emit(id, from, 'scheduled', queue, tenant)
end

-- add the job's stream entry; the caller records status 'pending' and the entry id
local function enqueue(id, from, queue, tenant)
  local eid = redis.call('XADD', QUEUE .. queue, '*', 'j', id)
  emit(id, from, 'pending', queue, tenant)
  return eid
end

-- begin an attempt on an entry this consumer now holds. Returns what the worker needs to run
-- it, or false when there is nothing to run (the job is gone, finished, cancelled, superseded
-- by a newer entry, or out of attempts: then it is dead-lettered). A `fresh` entry (just read
-- with XREADGROUP) whose job is already running was claimed by another worker while this one
-- was slow to start it: it is that worker's now, so it is left alone.
local function start_job(stream, eid, id, queue, consumer, now, fresh)
  local key = JOB .. id
  local f = redis.call('HMGET', key, 'status', 'attempts', 'max_attempts', 'type', 'payload',
    'timeout_s', 'tenant', 'entry', 'cancel')
  if (f[1] ~= 'pending' and f[1] ~= 'running') or f[8] ~= eid then
    drop_entry(stream, eid)
    return false
  end
  if fresh and f[1] == 'running' then
    return false
  end
  if f[9] == '1' then -- cancel was asked while its last worker ran it, and that worker died
    drop_entry(stream, eid)
    terminate(key, id, f[1], 'cancelled', queue, f[7], now)
    return false
  end
  local attempts = (tonumber(f[2]) or 0) + 1
  if attempts > (tonumber(f[3]) or 1) then
    drop_entry(stream, eid)
    local err = '{"type":"LeaseExpired","message":"the worker running attempt ' .. f[2] ..
      ' stopped without finishing and no attempts are left"}'
    -- the record names who ended it, so the late finish of the expired attempt reads as lost
    redis.call('HSET', key, 'worker', consumer)
    dead_letter(key, id, f[1], queue, f[7], err, f[2], now)
    return false
  end
  redis.call('HSET', key, 'status', 'running', 'attempts', attempts, 'started_at', fmt(now),
    'worker', consumer)
  emit(id, f[1], 'running', queue, f[7])
  return {eid, id, queue, tostring(attempts), f[4], f[5], f[6], f[3], f[7]}
end
