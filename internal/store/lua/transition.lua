-- transition: conference state changes (SPEC §3, §4), for every change in
-- flight, in one atomic script run. Each item is checked and applied in
-- order and on its own; writes shared by items (licence counts, domain
-- lists, the end-time index, node sets, the pending-restore set, number
-- counters) are gathered and made once at the end.
--
-- ARGV: now, n, then n items, each starting with its kind:
--   'R' reserve: check the domain, check and count the licence, take the
--     number (given: free of conferences and templates; else the next free
--     one of the segment), write the conference as creating.
--       e164 ('' to allocate), moid, class, seqkey, segment, digits, endtime,
--       nfields, field, value, ...
--   'C' commit: a node acknowledged; creating -> running on that node.
--       e164, node, ip, pid, room, realplatform
--   'P' pend: running on node -> pending-restore (its node or room is lost).
--     Legacy conferences are never moved: LEGACY.
--       e164, node, reason
--   'B' begin restore: pending-restore -> creating on a new node. Answers
--     the conference's fields, for the restore request.
--       e164, node, room
--   'F' restore failed: creating on node -> pending-restore.
--       e164, node, reason
--   'A' adopt: pending-restore on node -> running (the node reported it).
--       e164, node
-- Returns per item {'OK', e164 or moid, ...} or {'ERR', code, detail}.
local now = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3
local out = {}
-- What the run gathers by a string (a domain, a node, a counter) is kept
-- in one table, keyed, under a letter for each kind, and each kind lists
-- its keys in the order they came, to walk at the end. One table and not
-- one per kind: the embedded store's Lua gives every table with string
-- keys a map of 32 entries and an index of its keys, more than a create
-- costs otherwise. Made with one entry so that its map starts small.
local keyed = {['-'] = true}
-- 'f'..moid: the domain's info 'used' value, false when missing
-- 'l'..moid..'|'..class: {limit, count, start, moid, class}, also in lics
-- 's'..seqkey: the counter's current value, its key also in seqkeys
local lics, seqkeys = {}, {}
-- Lists by key: [1] is the letter, then the keys; keyed[letter..key] is
-- the list of that key.
local dconfs = {'d'}   -- moid -> {e164, state, ...}
local nodes = {'n'}    -- node -> {e164, ...}
local unnodes = {'u'}  -- node -> {e164, ...} to leave its set
local ends = {}        -- {endtime, e164, ...}
local pend, unpend = {}, {}
local creating, uncreating = {}, {}  -- the creating index: {now, e164, ...} and {e164, ...}

local function push(t, k, a, b)
  local key = t[1] .. k
  local l = keyed[key]
  if not l then l = {}; keyed[key] = l; t[#t + 1] = k end
  l[#l + 1] = a
  if b then l[#l + 1] = b end
end

-- each calls f(key, list) for every key of t, in order.
local function each(t, f)
  for j = 2, #t do f(t[j], keyed[t[1] .. t[j]]) end
end

-- free: no conference or template holds e164. A number taken earlier in
-- this run is written at once, so this sees it too.
local function free(e164)
  return redis.call('EXISTS', conf_key(e164), 'template/' .. e164 .. '/') == 0
end

local function reserve()
  local e164, moid, class = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local seqkey, segment, digits = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
  local endtime = ARGV[i + 6]
  local nf = tonumber(ARGV[i + 7])
  local fstart = i + 8
  i = fstart + 2 * nf
  local used = keyed['f' .. moid]
  if used == nil then
    used = redis.call('HGET', 'domain/' .. moid .. '/info', 'used') or false
    keyed['f' .. moid] = used
  end
  if not used then return {'ERR', 'DOMAIN_NOT_FOUND', moid} end
  if used == '0' then return {'ERR', 'DOMAIN_DISABLED', moid} end
  local lk = 'l' .. moid .. '|' .. class
  local l = keyed[lk]
  if not l then
    local v = redis.call('HMGET', 'domain/' .. moid .. '/license', class .. '_confnumlimit', class .. '_confnum')
    local c = tonumber(v[2] or '0')
    l = {tonumber(v[1] or '0'), c, c, moid, class}
    keyed[lk] = l
    lics[#lics + 1] = l
  end
  if l[2] >= l[1] then return {'ERR', 'LICENSE_EXHAUSTED', l[2] .. '/' .. l[1]} end
  if e164 == '' then
    local space = 1
    for _ = 1, digits do space = space * 10 end
    local seq = keyed['s' .. seqkey]
    if not seq then
      seq = tonumber(redis.call('GET', seqkey) or '0')
      seqkeys[#seqkeys + 1] = seqkey
    end
    for _ = 1, 2000 do
      seq = seq + 1
      local cand = segment .. string.format('%0' .. digits .. 'd', seq % space)
      if free(cand) then e164 = cand; break end
    end
    keyed['s' .. seqkey] = seq
    if e164 == '' then return {'ERR', 'E164_EXHAUSTED', segment} end
  elseif not free(e164) then
    -- A conference or a template holds it: numbers are unique across both.
    return {'ERR', 'E164_IN_USE', e164}
  end
  l[2] = l[2] + 1
  redis.call('HSET', conf_key(e164), 'e164', e164, 'state', 'creating', 'moid', moid,
    'licclass', class, 'createtime', now, 'endtime', endtime, unpack(ARGV, fstart, fstart + 2 * nf - 1))
  push(dconfs, moid, e164, 'creating')
  ends[#ends + 1] = endtime
  ends[#ends + 1] = e164
  creating[#creating + 1] = now
  creating[#creating + 1] = e164
  return {'OK', e164}
end

local function commit()
  local e164, node, ip, pid, room, real = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  i = i + 6
  local ckey = conf_key(e164)
  local f = redis.call('HMGET', ckey, 'state', 'moid', 'cmu', 'realstarttime')
  if not f[1] then return {'ERR', 'CONF_NOT_FOUND', e164} end
  if f[1] ~= 'creating' then return {'ERR', 'STATE', f[1]} end
  -- A restore attributes the conference to its node before asking it; an
  -- acknowledgement from any other node is stale.
  if f[3] and f[3] ~= '' and f[3] ~= node then return {'ERR', 'NODE_MISMATCH', f[3]} end
  local start = f[4]
  if not start or start == '' then start = now end
  redis.call('HSET', ckey, 'state', 'running', 'cmu', node, 'mcuip', ip, 'mcupid', pid,
    'roommoid', room, 'realplatformmoid', real, 'reason', '', 'realstarttime', start, 'placedat', now)
  redis.call('HDEL', ckey, 'restoreattempts')
  push(dconfs, f[2], e164, 'running')
  push(nodes, node, e164)
  uncreating[#uncreating + 1] = e164
  return {'OK', f[2]}
end

-- pend: running on node -> pending-restore.
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
  return {'OK', f[2]}
end

-- begin: pending-restore -> creating on a new node.
local function begin()
  local e164, node, room = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  i = i + 3
  local ckey = conf_key(e164)
  local all = redis.call('HGETALL', ckey)
  if #all == 0 then return {'ERR', 'CONF_NOT_FOUND', e164} end
  local f = {}
  for k = 1, #all, 2 do f[all[k]] = all[k + 1] end
  if f.state ~= 'pending-restore' then return {'ERR', 'STATE', f.state or ''} end
  if f.cmu and f.cmu ~= '' and f.cmu ~= node then push(unnodes, f.cmu, e164) end
  redis.call('HSET', ckey, 'state', 'creating', 'cmu', node, 'roommoid', room, 'createtime', now)
  f.prevcmu = f.cmu or ''
  f.state, f.cmu, f.roommoid, f.createtime = 'creating', node, room, now
  push(dconfs, f.moid, e164, 'creating')
  push(nodes, node, e164)
  unpend[#unpend + 1] = e164
  creating[#creating + 1] = now
  creating[#creating + 1] = e164
  local r = {'OK', f.moid}
  for k, v in pairs(f) do r[#r + 1] = k; r[#r + 1] = v end
  return r
end

-- fail: creating on node -> pending-restore.
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
  return {'OK', f[2]}
end

-- adopt: pending-restore on node -> running.
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
  return {'OK', f[2]}
end

for _ = 1, n do
  local kind = ARGV[i]
  i = i + 1
  local f
  if kind == 'R' then f = reserve elseif kind == 'C' then f = commit
  elseif kind == 'P' then f = pend_one elseif kind == 'B' then f = begin
  elseif kind == 'F' then f = fail elseif kind == 'A' then f = adopt
  else return redis.error_reply('transition: unknown item kind ' .. tostring(kind)) end
  out[#out + 1] = f()
end

for _, l in ipairs(lics) do
  if l[2] ~= l[3] then
    redis.call('HINCRBY', 'domain/' .. l[4] .. '/license', l[5] .. '_confnum', l[2] - l[3])
  end
end
each(dconfs, function(moid, d) redis.call('HSET', 'domain/' .. moid .. '/confs', unpack(d)) end)
each(unnodes, function(node, l) redis.call('SREM', 'node/' .. node .. '/confs', unpack(l)) end)
each(nodes, function(node, l) redis.call('SADD', 'node/' .. node .. '/confs', unpack(l)) end)
if #unpend > 0 then redis.call('SREM', 'confs/pending', unpack(unpend)) end
if #pend > 0 then redis.call('SADD', 'confs/pending', unpack(pend)) end
if #uncreating > 0 then redis.call('ZREM', 'confs/creating', unpack(uncreating)) end
if #creating > 0 then redis.call('ZADD', 'confs/creating', unpack(creating)) end
if #ends > 0 then redis.call('ZADD', 'confs/endtime', unpack(ends)) end
for _, k in ipairs(seqkeys) do redis.call('SET', k, string.format('%d', keyed['s' .. k])) end
return out
