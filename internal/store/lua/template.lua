-- template: public conference templates (000 §10). A number belongs to one
-- conference or one template: this script and transition.lua's reserve
-- decide it, each in one atomic step.
-- ARGV: op, e164, moid, seqkey, segment, digits, field, value, ...
--   'create' makes a new template. With e164 '' it takes the next free
--     number of the segment; a given number must be of the segment (the
--     segment followed by digits digits; segment '' allows any) and held
--     by no conference and no template.
--   'update' replaces the fields of template e164, which must exist,
--     keeping its number and creation time.
--   'put' is 'update' when template e164 exists, else 'create'.
--   'del' removes template e164; the other arguments are unused.
-- Returns {'OK', e164, createtime} or {'ERR', code, detail}.
local op, e164, moid = ARGV[1], ARGV[2], ARGV[3]
local seqkey, segment, digits = ARGV[4], ARGV[5] or '', tonumber(ARGV[6] or '0') or 0
if op == 'del' then
  local tkey = 'template/' .. e164 .. '/'
  local old = redis.call('HGET', tkey, 'moid')
  if not old then return {'ERR', 'TEMPLATE_NOT_FOUND', e164} end
  redis.call('SREM', 'domain/' .. old .. '/templates', e164)
  redis.call('DEL', tkey)
  return {'OK', e164}
end
if redis.call('EXISTS', 'domain/' .. moid .. '/info') == 0 then return {'ERR', 'DOMAIN_NOT_FOUND', moid} end

local old = false -- {moid, createtime} of the template being updated
if e164 ~= '' then
  local f = redis.call('HMGET', 'template/' .. e164 .. '/', 'moid', 'createtime')
  if f[1] then old = f end
end
if op == 'put' then op = old and 'update' or 'create' end
if op == 'update' then
  if not old then return {'ERR', 'TEMPLATE_NOT_FOUND', e164} end
elseif op == 'create' then
  if e164 == '' then
    e164 = alloc_e164(seqkey, segment, digits)
    if not e164 then return {'ERR', 'E164_EXHAUSTED', segment} end
  else
    if segment ~= '' and (string.sub(e164, 1, #segment) ~= segment or (digits > 0 and #e164 ~= #segment + digits)) then
      return {'ERR', 'E164_OUT_OF_SEGMENT', string.format('%s|%d', segment, digits)}
    end
    if old then return {'ERR', 'E164_IN_USE', 'template ' .. e164} end
    if redis.call('EXISTS', conf_key(e164)) == 1 then return {'ERR', 'E164_IN_USE', 'conference ' .. e164} end
  end
else
  return {'ERR', 'BAD_OP', op}
end

local tkey = 'template/' .. e164 .. '/'
if old and old[1] ~= moid then redis.call('SREM', 'domain/' .. old[1] .. '/templates', e164) end
local created = ''
local args = {'HSET', tkey, 'e164', e164, 'moid', moid}
for k = 7, #ARGV - 1, 2 do
  local field, value = ARGV[k], ARGV[k + 1]
  if field == 'createtime' then
    if old then value = old[2] or value end
    created = value
  end
  args[#args + 1] = field
  args[#args + 1] = value
end
redis.call(unpack(args))
redis.call('SADD', 'domain/' .. moid .. '/templates', e164)
return {'OK', e164, created}
