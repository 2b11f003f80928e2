-- recovery: a lost node's or room's conferences moved in bulk (SPEC §4),
-- many in one atomic script run. Each item is checked and applied on its
-- own, with the same rules as the transition script's items of the same
-- letter; writes shared by items (domain lists, node sets, the
-- pending-restore set, the creating index) are gathered and made once at
-- the end. Replies are short: a batch of a thousand is recorded under its
-- operation id (lib.lua) for a repeat after a lost reply.
--
-- ARGV: now, n, then n items, each starting with its kind:
--   'P' pend: running on node -> pending-restore (its node or room is lost).
--     Legacy conferences are never moved: LEGACY.
--       e164, node, reason                   -> {'OK'}
--   'B' begin restore: pending-restore -> creating on a new node. Answers
--     what the node needs to host it (RESTORE_FIELDS, in that order).
--       e164, node, room                     -> {'OK', moid, previous node, monitored '1'|'0', value, ...}
--   'M' move: running on a lost node -> creating on a new node, as 'P' then
--     'B' in one step (the lost node's conferences go straight to their
--     new nodes). Legacy conferences are never moved: LEGACY.
--       e164, lost node, reason, node, room -> as 'B'
--   'C' commit restore: creating on node -> running (the node acknowledged).
--       e164, node, ip, pid, room, realplatform -> {'OK'}
--   'F' restore failed: creating on node -> pending-restore.
--       e164, node, reason                   -> {'OK'}
--   'A' adopt: pending-restore on node -> running (the node reported it).
--       e164, node                           -> {'OK'}
-- Returns per item {'OK', ...} or {'ERR', code, detail}.
local now = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3
local out = {}
local OK = {'OK'}
local dconfs = {}      -- moid -> {e164, state, ...}
local nodes = {}       -- node -> {e164, ...} to join its set
local unnodes = {}     -- node -> {e164, ...} to leave its set
local pend, unpend = {}, {}
local creating, uncreating = {}, {}  -- the creating index: {now, e164, ...} and {e164, ...}

local function push(t, k, a, b)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  l[#l + 1] = a
  if b then l[#l + 1] = b end
end

-- any_monitor says whether any conference has a monitoring session: most
-- often none has, and a begin need not look for its own.
local monitors_seen
local function any_monitor()
  if monitors_seen == nil then monitors_seen = redis.call('ZCARD', 'confs/monitors') > 0 end
  return monitors_seen
end

local function pend_one()
  local e164, node, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', 'legacy')
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[3] ~= node then return {'ERR', 'NODE_MISMATCH', f[3] or ''} end
  if f[1] ~= 'running' then return {'ERR', 'STATE', f[1]} end
  if f[4] == '1' then return {'ERR', 'LEGACY', node} end
  redis.call('HSET', ckey, 'state', 'pending-restore', 'reason', reason)
  push(dconfs, f[2], e164, 'pending-restore')
  pend[#pend + 1] = e164
  return OK
end

-- What a restore sends the node, besides the number, node and room: the
-- fields of store.restoreFields, in that order.
local RESTORE_FIELDS = {'confname', 'platformmoid', 'licclass', 'password', 'invited', 'recording',
  'endtime', 'duration'}

local function begin()
  local e164, node, room = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', unpack(RESTORE_FIELDS))
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[1] ~= 'pending-restore' then return {'ERR', 'STATE', f[1]} end
  local prev = f[3] or ''
  if prev ~= '' and prev ~= node then push(unnodes, prev, e164) end
  redis.call('HSET', ckey, 'state', 'creating', 'cmu', node, 'roommoid', room, 'createtime', now)
  push(dconfs, f[2], e164, 'creating')
  push(nodes, node, e164)
  unpend[#unpend + 1] = e164
  creating[#creating + 1] = now
  creating[#creating + 1] = e164
  local monitored = '0'
  if any_monitor() and redis.call('EXISTS', 'conf/' .. e164 .. '/monitor') == 1 then monitored = '1' end
  local r = {'OK', f[2], prev, monitored}
  for k = 1, #RESTORE_FIELDS do r[#r + 1] = f[3 + k] or '' end
  return r
end

local function move()
  local e164, from, reason, node, room = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', 'legacy', unpack(RESTORE_FIELDS))
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[3] ~= from then return {'ERR', 'NODE_MISMATCH', f[3] or ''} end
  if f[1] ~= 'running' then return {'ERR', 'STATE', f[1]} end
  if f[4] == '1' then return {'ERR', 'LEGACY', from} end
  if from ~= node then push(unnodes, from, e164) end
  redis.call('HSET', ckey, 'state', 'creating', 'cmu', node, 'roommoid', room, 'createtime', now, 'reason', reason)
  push(dconfs, f[2], e164, 'creating')
  push(nodes, node, e164)
  creating[#creating + 1] = now
  creating[#creating + 1] = e164
  local monitored = '0'
  if any_monitor() and redis.call('EXISTS', 'conf/' .. e164 .. '/monitor') == 1 then monitored = '1' end
  local r = {'OK', f[2], from, monitored}
  for k = 1, #RESTORE_FIELDS do r[#r + 1] = f[4 + k] or '' end
  return r
end

local function commit()
  local e164, node, ip, pid, room, real = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', 'realstarttime')
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[1] ~= 'creating' then return {'ERR', 'STATE', f[1]} end
  if f[3] ~= node then return {'ERR', 'NODE_MISMATCH', f[3] or ''} end
  local start = f[4]
  if not start or start == '' then start = now end
  redis.call('HSET', ckey, 'state', 'running', 'cmu', node, 'mcuip', ip, 'mcupid', pid,
    'roommoid', room, 'realplatformmoid', real, 'reason', '', 'realstarttime', start, 'placedat', now)
  redis.call('HDEL', ckey, 'restoreattempts')
  push(dconfs, f[2], e164, 'running')
  push(nodes, node, e164)
  uncreating[#uncreating + 1] = e164
  return OK
end

local function fail()
  local e164, node, reason = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu')
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[3] ~= node then return {'ERR', 'NODE_MISMATCH', f[3] or ''} end
  if f[1] ~= 'creating' then return {'ERR', 'STATE', f[1]} end
  redis.call('HSET', ckey, 'state', 'pending-restore', 'reason', reason)
  redis.call('HINCRBY', ckey, 'restoreattempts', 1)
  push(dconfs, f[2], e164, 'pending-restore')
  pend[#pend + 1] = e164
  uncreating[#uncreating + 1] = e164
  return OK
end

local function adopt()
  local e164, node = ARGV[i], ARGV[i + 1]
  i = i + 2
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu')
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[3] ~= node then return {'ERR', 'NODE_MISMATCH', f[3] or ''} end
  if f[1] ~= 'pending-restore' then return {'ERR', 'STATE', f[1]} end
  redis.call('HSET', ckey, 'state', 'running', 'reason', '')
  redis.call('HDEL', ckey, 'restoreattempts')
  push(dconfs, f[2], e164, 'running')
  push(nodes, node, e164)
  unpend[#unpend + 1] = e164
  return OK
end

local kinds = {P = pend_one, B = begin, M = move, C = commit, F = fail, A = adopt}
for _ = 1, n do
  local kind = ARGV[i]
  i = i + 1
  local f = kinds[kind]
  if not f then return redis.error_reply('recovery: unknown item kind ' .. tostring(kind)) end
  out[#out + 1] = f()
end

-- Large batches: unpack in slices, within Lua's limit on arguments.
local function bulk(cmd, key, l)
  local step = 4000
  for a = 1, #l, step do
    redis.call(cmd, key, unpack(l, a, math.min(a + step - 1, #l)))
  end
end

for moid, d in pairs(dconfs) do bulk('HSET', 'domain/' .. moid .. '/confs', d) end
for node, l in pairs(unnodes) do bulk('SREM', 'node/' .. node .. '/confs', l) end
for node, l in pairs(nodes) do bulk('SADD', 'node/' .. node .. '/confs', l) end
if #unpend > 0 then bulk('SREM', 'confs/pending', unpend) end
if #pend > 0 then bulk('SADD', 'confs/pending', pend) end
if #uncreating > 0 then bulk('ZREM', 'confs/creating', uncreating) end
if #creating > 0 then bulk('ZADD', 'confs/creating', creating) end
return out
