-- apikey_revoke.lua: forget an API key by its id; its secret stops working at once in Redis.
-- ARGV[FIRST] key id, +1 API-key prefix (P:apikey:), +2 key-id hash (P:apikeys)
-- Returns 1, or 0 for an unknown id.
--!include head
local id = ARGV[FIRST]
local digest = redis.call('HGET', ARGV[FIRST + 2], id)
if not digest then
  return 0
end
redis.call('DEL', ARGV[FIRST + 1] .. digest)
redis.call('HDEL', ARGV[FIRST + 2], id)
return 1
