-- apikey_create.lua: store a new API key under the SHA-256 digest of its secret, and its id.
-- ARGV[FIRST] key id, +1 digest, +2 tenant, +3 admin (1/0), +4 rpm ('' = the default),
--   +5 max active ('' = the default), +6 API-key prefix (P:apikey:), +7 key-id hash (P:apikeys)
-- Returns 1.
--!include head
local id, digest = ARGV[FIRST], ARGV[FIRST + 1]
redis.call('HSET', ARGV[FIRST + 6] .. digest, 'key_id', id, 'tenant', ARGV[FIRST + 2],
  'admin', ARGV[FIRST + 3], 'rpm', ARGV[FIRST + 4], 'max_active', ARGV[FIRST + 5],
  'created_at', fmt(now_ms()))
redis.call('HSET', ARGV[FIRST + 7], id, digest)
return 1
