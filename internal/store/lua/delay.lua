-- delay: push a conference's end time back, within the longest a
-- conference may be booked for: the one place that limit is checked for
-- delays, against the length booked so far, so that no run of delays
-- exceeds it.
-- ARGV: e164, minutes, longest booked length in minutes ('' or '0': none).
-- Returns {'OK', endtime, duration} or {'ERR', code, detail}; a delay past
-- the limit is {'ERR', 'DURATION_LIMIT', booked .. '/' .. limit}.
local e164, minutes, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3] or '0') or 0
local ckey = conf_key(e164)
local f = redis.call('HMGET', ckey, 'state', 'endtime', 'duration')
if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
if f[1] == 'creating' then return {'ERR', 'STATE', f[1]} end
local booked = tonumber(f[3] or '0') or 0
if limit > 0 and booked + minutes > limit then
  return {'ERR', 'DURATION_LIMIT', string.format('%d/%d', booked, limit)}
end
local endtime = tonumber(f[2] or '0') + minutes * 60000
local duration = booked + minutes
redis.call('HSET', ckey, 'endtime', string.format('%d', endtime), 'duration', duration, 'willendntf', '0')
redis.call('ZADD', 'confs/endtime', string.format('%d', endtime), e164)
return {'OK', string.format('%d', endtime), tostring(duration)}
