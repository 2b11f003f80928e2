-- delay: push a conference's end time back.
-- ARGV: e164, minutes.
-- Returns {'OK', endtime, duration} or {'ERR', code, detail}.
local e164, minutes = ARGV[1], tonumber(ARGV[2])
local ckey = conf_key(e164)
local f = redis.call('HMGET', ckey, 'state', 'endtime', 'duration')
if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
if f[1] == 'creating' then return {'ERR', 'STATE', f[1]} end
local endtime = tonumber(f[2] or '0') + minutes * 60000
local duration = tonumber(f[3] or '0') + minutes
redis.call('HSET', ckey, 'endtime', string.format('%d', endtime), 'duration', duration, 'willendntf', '0')
redis.call('ZADD', 'confs/endtime', string.format('%d', endtime), e164)
return {'OK', string.format('%d', endtime), tostring(duration)}
