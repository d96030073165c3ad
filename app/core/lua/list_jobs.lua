-- list_jobs.lua: a page of a tenant's recent jobs, newest first, filtered by status, queue and
-- type. Index entries whose job record has expired are dropped on the way.
-- ARGV[FIRST] tenant, +1 cursor: the last job id of the previous page ('' = from the newest),
--   +2 that job's index score, +3 most jobs to return, +4 most index entries to look at,
--   +5 status, +6 queue, +7 type ('' = any)
-- Returns {job ids, next cursor id or '', its score or ''}: a page can come back short when
-- the look-at budget runs out; the cursor then goes on from where it stopped.
--!include head
local index = TENANT .. ARGV[FIRST] .. ':jobs'
local after, after_score = ARGV[FIRST + 1], ARGV[FIRST + 2]
local limit, budget = tonumber(ARGV[FIRST + 3]), tonumber(ARGV[FIRST + 4])
local want = {ARGV[FIRST + 5], ARGV[FIRST + 6], ARGV[FIRST + 7]}
local PAGE = 100

local rank = 0
if after ~= '' then
  local at = redis.call('ZREVRANK', index, after)
  -- the cursor's own entry has gone (expired): resume below its score
  rank = at and at + 1 or redis.call('ZCOUNT', index, '(' .. after_score, '+inf')
end

local ids, stale = {}, {}
local last, last_score = '', ''
local looked = 0
while looked < budget do
  local size = math.min(PAGE, budget - looked)
  local page = redis.call('ZREVRANGE', index, rank, rank + size - 1, 'WITHSCORES')
  if #page == 0 then
    last, last_score = '', ''
    break
  end
  for j = 1, #page, 2 do
    local id = page[j]
    looked = looked + 1
    last, last_score = id, page[j + 1]
    local f = redis.call('HMGET', JOB .. id, 'status', 'queue', 'type')
    if not f[1] then
      stale[#stale + 1] = id
    elseif (want[1] == '' or f[1] == want[1]) and (want[2] == '' or f[2] == want[2])
      and (want[3] == '' or f[3] == want[3]) then
      ids[#ids + 1] = id
      if #ids == limit then
        break
      end
    end
  end
  if #ids == limit then
    break
  end
  rank = rank + #page / 2
  if #page / 2 < size then
    last, last_score = '', '' -- the end of the index
    break
  end
end
if #stale > 0 then
  redis.call('ZREM', index, unpack(stale))
end
return {ids, last, last_score}
