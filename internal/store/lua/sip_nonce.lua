-- sip_nonce: the nonce counts of digest authentication (RFC 7616 §3.4),
-- shared by every SIP node of the platform, so that a nonce one node
-- issued is answered through another, and a count is accepted once.
--   sip/nonces         hash: nonce -> highest nonce count accepted
--   sip/nonces/until   zset: nonce -> when its record may go (Unix ms)
-- ARGV: nonce, nc, until, now. A count must be higher than every count
-- accepted with the nonce before.
-- Returns {'OK'} or {'ERR', 'REPLAY', highest count accepted}.
local nonce, nc, untilms, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local seen = redis.call('HGET', 'sip/nonces', nonce)
if seen and tonumber(seen) >= nc then return {'ERR', 'REPLAY', seen} end
redis.call('HSET', 'sip/nonces', nonce, string.format('%d', nc))
if not seen then redis.call('ZADD', 'sip/nonces/until', untilms, nonce) end
-- A few expired records go with every use: they are kept no longer than
-- their nonce could be answered.
local old = redis.call('ZRANGEBYSCORE', 'sip/nonces/until', '-inf', now, 'LIMIT', 0, 16)
if #old > 0 then
  redis.call('HDEL', 'sip/nonces', unpack(old))
  redis.call('ZREM', 'sip/nonces/until', unpack(old))
end
return {'OK'}
