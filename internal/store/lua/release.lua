-- release: end a conference and give back everything it took.
-- ARGV: e164, expected state ('' any), expected node ('' any).
-- Returns {'OK', field, value, ...} (the hash as it was) or {'ERR', code, detail}.
local e164, want_state, want_node = ARGV[1], ARGV[2], ARGV[3]
local ckey = conf_key(e164)
local f = redis.call('HMGET', ckey, 'state', 'moid', 'licclass', 'cmu')
if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
if want_state ~= '' and f[1] ~= want_state then return {'ERR', 'STATE', f[1]} end
if want_node ~= '' and f[4] ~= want_node then return {'ERR', 'NODE_MISMATCH', f[4] or ''} end
local lkey = 'domain/' .. f[2] .. '/license'
local cfield = (f[3] or '') .. '_confnum'
if tonumber(redis.call('HGET', lkey, cfield) or '0') > 0 then
  redis.call('HINCRBY', lkey, cfield, -1)
end
redis.call('HDEL', 'domain/' .. f[2] .. '/confs', e164)
if f[4] and f[4] ~= '' then redis.call('SREM', 'node/' .. f[4] .. '/confs', e164) end
redis.call('ZREM', 'confs/endtime', e164)
redis.call('SREM', 'confs/pending', e164)
redis.call('ZREM', 'confs/creating', e164)
local mkey = 'conf/' .. e164 .. '/monitor'
for _, m in ipairs(redis.call('ZRANGE', mkey, 0, -1)) do
  redis.call('ZREM', 'confs/monitors', e164 .. '|' .. m)
end
redis.call('DEL', mkey)
local all = redis.call('HGETALL', ckey)
redis.call('DEL', ckey)
local out = {'OK'}
for _, v in ipairs(all) do out[#out + 1] = v end
return out
