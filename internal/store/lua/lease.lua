-- lease: one active scheduler per platform (SPEC §4, issue: HA).
-- ARGV: op ('acquire' | 'release'), key, holder, ttl ms.
-- acquire takes a free lease or renews one's own; release frees one's own.
-- Returns {'OK'} or {'ERR', 'HELD', holder}.
local op, key, holder, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local cur = redis.call('GET', key)
if op == 'release' then
  if cur == holder then redis.call('DEL', key) end
  return {'OK'}
end
if cur and cur ~= holder then return {'ERR', 'HELD', cur} end
redis.call('SET', key, holder, 'PX', ttl)
return {'OK'}
