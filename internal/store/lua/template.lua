-- template: public conference templates (000 §10).
-- ARGV: op ('put' | 'del'), e164 ('' on put to allocate), moid, seqkey,
--   segment, digits, field, value, ...
-- Returns {'OK', e164} or {'ERR', code, detail}.
local op, e164, moid = ARGV[1], ARGV[2], ARGV[3]
if op == 'del' then
  local tkey = 'template/' .. e164 .. '/'
  local old = redis.call('HGET', tkey, 'moid')
  if not old then return {'ERR', 'TEMPLATE_NOT_FOUND', e164} end
  redis.call('SREM', 'domain/' .. old .. '/templates', e164)
  redis.call('DEL', tkey)
  return {'OK', e164}
end
if redis.call('EXISTS', 'domain/' .. moid .. '/info') == 0 then return {'ERR', 'DOMAIN_NOT_FOUND', moid} end
if e164 == '' then
  e164 = alloc_e164(ARGV[4], ARGV[5], tonumber(ARGV[6]))
  if not e164 then return {'ERR', 'E164_EXHAUSTED', ARGV[5]} end
end
local tkey = 'template/' .. e164 .. '/'
local old = redis.call('HGET', tkey, 'moid')
if old and old ~= moid then redis.call('SREM', 'domain/' .. old .. '/templates', e164) end
local args = {'HSET', tkey, 'e164', e164, 'moid', moid}
for k = 7, #ARGV do args[#args + 1] = ARGV[k] end
redis.call(unpack(args))
redis.call('SADD', 'domain/' .. moid .. '/templates', e164)
return {'OK', e164}
