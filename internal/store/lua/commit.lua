-- commit: nodes acknowledged; creating -> running on the node that did.
-- Shared writes (domain lists, node sets) are gathered and made once.
-- ARGV: now, n, then per item: e164, node, ip, pid, room, realplatform.
-- Returns per item {'OK', moid} or {'ERR', code, detail}.
local now = ARGV[1]
local n = tonumber(ARGV[2])
local out = {}
local dconfs = {}  -- moid -> {e164, 'running', ...}
local nodes = {}   -- node -> {e164, ...}
local function add(t, k, ...)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  for _, v in ipairs({...}) do l[#l + 1] = v end
end
for k = 0, n - 1 do
  local b = 3 + k * 6
  local e164, node, ip, pid, room, real = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', 'realstarttime')
  if not f[1] then
    out[#out + 1] = {'ERR', 'CONF_NOT_FOUND', e164}
  elseif f[1] ~= 'creating' then
    out[#out + 1] = {'ERR', 'STATE', f[1]}
  else
    if f[3] and f[3] ~= '' and f[3] ~= node then
      redis.call('SREM', 'node/' .. f[3] .. '/confs', e164)
    end
    local start = f[4]
    if not start or start == '' then start = now end
    redis.call('HSET', ckey, 'state', 'running', 'cmu', node, 'mcuip', ip, 'mcupid', pid,
      'roommoid', room, 'realplatformmoid', real, 'reason', '', 'realstarttime', start)
    add(dconfs, f[2], e164, 'running')
    add(nodes, node, e164)
    out[#out + 1] = {'OK', f[2]}
  end
end
for moid, d in pairs(dconfs) do redis.call('HSET', 'domain/' .. moid .. '/confs', unpack(d)) end
for node, l in pairs(nodes) do redis.call('SADD', 'node/' .. node .. '/confs', unpack(l)) end
return out
