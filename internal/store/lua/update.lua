-- update: set fields of a conference that exists.
-- ARGV: e164, field, value, ...
-- Returns {'OK'} or {'ERR', 'CONF_NOT_FOUND', e164}.
local ckey = conf_key(ARGV[1])
if redis.call('EXISTS', ckey) == 0 then return {'ERR', 'CONF_NOT_FOUND', ARGV[1]} end
local args = {'HSET', ckey}
for k = 2, #ARGV do args[#args + 1] = ARGV[k] end
redis.call(unpack(args))
return {'OK'}
