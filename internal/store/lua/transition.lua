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
local used_flag = {}   -- moid -> info 'used' value, false when missing
local lic = {}         -- moid..'|'..class -> {limit, count, start, moid, class}
local dconfs = {}      -- moid -> {e164, state, ...}
local nodes = {}       -- node -> {e164, ...}
local ends = {}        -- {endtime, e164, ...}
local seqs = {}        -- seqkey -> current value
local taken = {}       -- numbers handed out in this run
local unnodes = {}     -- node -> {e164, ...} to leave its set
local pend, unpend = {}, {}
local creating, uncreating = {}, {}  -- the creating index: {now, e164, ...} and {e164, ...}

local function push(t, k, a, b)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  l[#l + 1] = a
  if b then l[#l + 1] = b end
end

local function free(e164)
  return not taken[e164] and redis.call('EXISTS', conf_key(e164), 'template/' .. e164 .. '/') == 0
end

local function reserve()
  local e164, moid, class = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local seqkey, segment, digits = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
  local endtime = ARGV[i + 6]
  local nf = tonumber(ARGV[i + 7])
  local fstart = i + 8
  i = fstart + 2 * nf
  if used_flag[moid] == nil then
    used_flag[moid] = redis.call('HGET', 'domain/' .. moid .. '/info', 'used') or false
  end
  local used = used_flag[moid]
  if not used then return {'ERR', 'DOMAIN_NOT_FOUND', moid} end
  if used == '0' then return {'ERR', 'DOMAIN_DISABLED', moid} end
  local lk = moid .. '|' .. class
  local l = lic[lk]
  if not l then
    local v = redis.call('HMGET', 'domain/' .. moid .. '/license', class .. '_confnumlimit', class .. '_confnum')
    local c = tonumber(v[2] or '0')
    l = {tonumber(v[1] or '0'), c, c, moid, class}
    lic[lk] = l
  end
  if l[2] >= l[1] then return {'ERR', 'LICENSE_EXHAUSTED', l[2] .. '/' .. l[1]} end
  if e164 == '' then
    local space = 1
    for _ = 1, digits do space = space * 10 end
    local seq = seqs[seqkey] or tonumber(redis.call('GET', seqkey) or '0')
    for _ = 1, 2000 do
      seq = seq + 1
      local cand = segment .. string.format('%0' .. digits .. 'd', seq % space)
      if free(cand) then e164 = cand; break end
    end
    seqs[seqkey] = seq
    if e164 == '' then return {'ERR', 'E164_EXHAUSTED', segment} end
  elseif not free(e164) then
    -- A conference or a template holds it: numbers are unique across both.
    return {'ERR', 'E164_IN_USE', e164}
  end
  l[2] = l[2] + 1
  taken[e164] = true
  local args = {'HSET', conf_key(e164), 'e164', e164, 'state', 'creating', 'moid', moid,
    'licclass', class, 'createtime', now, 'endtime', endtime}
  for f = fstart, fstart + 2 * nf - 1 do args[#args + 1] = ARGV[f] end
  redis.call(unpack(args))
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
    'roommoid', room, 'realplatformmoid', real, 'reason', '', 'realstarttime', start)
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
  push(dconfs, f[2], e164, 'running')
  push(nodes, node, e164)
  unpend[#unpend + 1] = e164
  return {'OK', f[2]}
end

local kinds = {R = reserve, C = commit, P = pend_one, B = begin, F = fail, A = adopt}
for _ = 1, n do
  local kind = ARGV[i]
  i = i + 1
  local f = kinds[kind]
  if not f then return redis.error_reply('transition: unknown item kind ' .. tostring(kind)) end
  out[#out + 1] = f()
end

for _, l in pairs(lic) do
  if l[2] ~= l[3] then
    redis.call('HINCRBY', 'domain/' .. l[4] .. '/license', l[5] .. '_confnum', l[2] - l[3])
  end
end
for moid, d in pairs(dconfs) do redis.call('HSET', 'domain/' .. moid .. '/confs', unpack(d)) end
for node, l in pairs(unnodes) do redis.call('SREM', 'node/' .. node .. '/confs', unpack(l)) end
for node, l in pairs(nodes) do redis.call('SADD', 'node/' .. node .. '/confs', unpack(l)) end
if #unpend > 0 then redis.call('SREM', 'confs/pending', unpack(unpend)) end
if #pend > 0 then redis.call('SADD', 'confs/pending', unpack(pend)) end
if #uncreating > 0 then redis.call('ZREM', 'confs/creating', unpack(uncreating)) end
if #creating > 0 then redis.call('ZADD', 'confs/creating', unpack(creating)) end
if #ends > 0 then redis.call('ZADD', 'confs/endtime', unpack(ends)) end
for k, v in pairs(seqs) do redis.call('SET', k, string.format('%d', v)) end
return out
