-- lease: one active scheduler per platform.
-- ARGV: op ('acquire' | 'release'), key, holder, ttl ms.
-- acquire takes a free or expired lease or renews one's own; release frees
-- one's own. The expiry is kept in the lease itself, against the store
-- server's clock, so no key TTL is involved.
-- Returns {'OK'} or {'ERR', 'HELD', holder}.
local op, key, holder, ttl = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cur = redis.call('HMGET', key, 'holder', 'until')
if op == 'release' then
  if cur[1] == holder then redis.call('DEL', key) end
  return {'OK'}
end
if cur[1] and cur[1] ~= holder and tonumber(cur[2] or '0') > now then
  return {'ERR', 'HELD', cur[1]}
end
redis.call('HSET', key, 'holder', holder, 'until', string.format('%d', now + ttl))
return {'OK'}
