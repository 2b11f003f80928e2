-- monitor: monitoring sessions of a conference, with keep-alive times.
-- ARGV: op ('add' | 'keepalive' | 'remove'), e164, member (ip:port), now.
-- Returns {'OK'} or {'ERR', code, detail}.
local op, e164, member, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local mkey = 'conf/' .. e164 .. '/monitor'
local idx = e164 .. '|' .. member
if op == 'add' then
  if redis.call('EXISTS', conf_key(e164)) == 0 then return {'ERR', 'CONF_NOT_FOUND', e164} end
  redis.call('ZADD', mkey, now, member)
  redis.call('ZADD', 'confs/monitors', now, idx)
  return {'OK'}
end
if not redis.call('ZSCORE', mkey, member) then return {'ERR', 'MONITOR_NOT_FOUND', member} end
if op == 'keepalive' then
  redis.call('ZADD', mkey, now, member)
  redis.call('ZADD', 'confs/monitors', now, idx)
else
  redis.call('ZREM', mkey, member)
  redis.call('ZREM', 'confs/monitors', idx)
end
return {'OK'}
