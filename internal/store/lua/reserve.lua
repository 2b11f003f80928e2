-- reserve: for each item, check the domain, check and count the licence,
-- take the number, write the conference as creating. Items are applied in
-- order, each on its own; writes shared by items (licence counts, domain
-- lists, the end-time index, the number counter) are gathered and made once
-- at the end, inside the same atomic script run.
-- ARGV: now, n, then per item:
--   e164 ('' to allocate), moid, class, seqkey, segment, digits, endtime,
--   nfields, field, value, ...
-- Returns per item {'OK', e164} or {'ERR', code, detail}.
local now = ARGV[1]
local n = tonumber(ARGV[2])
local i = 3
local out = {}
local used_flag = {}   -- moid -> info 'used' value, false when missing
local lic = {}         -- moid..'|'..class -> {limit, count, start}
local dconfs = {}      -- moid -> {e164, 'creating', ...}
local ends = {}        -- {endtime, e164, ...}
local seqs = {}        -- seqkey -> current value
local taken = {}       -- numbers handed out in this run

local function free(e164)
  return not taken[e164] and redis.call('EXISTS', conf_key(e164), 'template/' .. e164 .. '/') == 0
end

for _ = 1, n do
  local e164, moid, class = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local seqkey, segment, digits = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
  local endtime = ARGV[i + 6]
  local nf = tonumber(ARGV[i + 7])
  local fstart = i + 8
  i = fstart + 2 * nf
  local res
  if used_flag[moid] == nil then
    used_flag[moid] = redis.call('HGET', 'domain/' .. moid .. '/info', 'used') or false
  end
  local used = used_flag[moid]
  if not used then
    res = {'ERR', 'DOMAIN_NOT_FOUND', moid}
  elseif used == '0' then
    res = {'ERR', 'DOMAIN_DISABLED', moid}
  else
    local lk = moid .. '|' .. class
    local l = lic[lk]
    if not l then
      local v = redis.call('HMGET', 'domain/' .. moid .. '/license', class .. '_confnumlimit', class .. '_confnum')
      local c = tonumber(v[2] or '0')
      l = {tonumber(v[1] or '0'), c, c, moid, class}
      lic[lk] = l
    end
    if l[2] >= l[1] then
      res = {'ERR', 'LICENSE_EXHAUSTED', l[2] .. '/' .. l[1]}
    elseif e164 == '' then
      local space = 1
      for _ = 1, digits do space = space * 10 end
      local seq = seqs[seqkey] or tonumber(redis.call('GET', seqkey) or '0')
      for _ = 1, 2000 do
        seq = seq + 1
        local cand = segment .. string.format('%0' .. digits .. 'd', seq % space)
        if free(cand) then e164 = cand; break end
      end
      seqs[seqkey] = seq
      if e164 == '' then res = {'ERR', 'E164_EXHAUSTED', segment} end
    elseif taken[e164] or redis.call('EXISTS', conf_key(e164)) == 1 then
      res = {'ERR', 'E164_IN_USE', e164}
    end
    if not res then
      l[2] = l[2] + 1
      taken[e164] = true
      local args = {'HSET', conf_key(e164), 'e164', e164, 'state', 'creating', 'moid', moid,
        'licclass', class, 'createtime', now, 'endtime', endtime}
      for f = fstart, fstart + 2 * nf - 1 do args[#args + 1] = ARGV[f] end
      redis.call(unpack(args))
      local d = dconfs[moid]
      if not d then d = {}; dconfs[moid] = d end
      d[#d + 1] = e164
      d[#d + 1] = 'creating'
      ends[#ends + 1] = endtime
      ends[#ends + 1] = e164
      res = {'OK', e164}
    end
  end
  out[#out + 1] = res
end

for _, l in pairs(lic) do
  if l[2] ~= l[3] then
    redis.call('HINCRBY', 'domain/' .. l[4] .. '/license', l[5] .. '_confnum', l[2] - l[3])
  end
end
for moid, d in pairs(dconfs) do
  redis.call('HSET', 'domain/' .. moid .. '/confs', unpack(d))
end
if #ends > 0 then redis.call('ZADD', 'confs/endtime', unpack(ends)) end
for k, v in pairs(seqs) do redis.call('SET', k, string.format('%d', v)) end
return out
