-- Shared by every script: prepended at load time.
local function conf_key(e164) return 'confex/' .. e164 .. '/' end

-- alloc_e164 takes the next free number of a platform's segment.
local function alloc_e164(seqkey, segment, digits)
  local space = 1
  for _ = 1, digits do space = space * 10 end
  for _ = 1, 2000 do
    local seq = redis.call('INCR', seqkey) % space
    local cand = segment .. string.format('%0' .. digits .. 'd', seq)
    if redis.call('EXISTS', conf_key(cand)) == 0 and redis.call('EXISTS', 'template/' .. cand .. '/') == 0 then
      return cand
    end
  end
  return nil
end

-- Operation ids. Every script's ARGV[1] is the id of the operation it runs
-- for, made once per operation by the caller, and the rest of ARGV is the
-- script's own. The first run records its reply under the id; a repeat of
-- the same operation (its reply was lost on the way and the caller sent it
-- again) gets that reply back and changes nothing. An empty id records
-- nothing (reads). Records are kept OP_KEEP_MS, in a hash of replies and a
-- list of '<ms> <id>' in the order they were made (scripts run one at a
-- time, so the oldest is at its head), and recording runs remove expired
-- ones from the head, a bounded number at a time: the embedded server runs
-- no key expiry. A list and not a sorted set: the embedded server sorts a
-- whole sorted set for every range read, and this runs on every write.
-- Replies are encoded by hand (cjson is not on every script runner):
--   's' len ':' bytes   a string        'i' digits ':'   a number
--   'o' len ':' bytes   a status        'e' len ':' bytes an error (nested)
--   'T' true   'f' false               't' n ':' items  an array
local OP_KEEP_MS = 60000
local OP_PRUNE = 64
local OP_CHECK = 16

local function op_encode(v, out)
  local ty = type(v)
  if ty == 'string' then
    out[#out + 1] = 's' .. #v .. ':' .. v
  elseif ty == 'number' then
    out[#out + 1] = 'i' .. tostring(v) .. ':'
  elseif ty == 'boolean' then
    out[#out + 1] = v and 'T' or 'f'
  elseif ty == 'table' then
    if type(v.err) == 'string' then
      out[#out + 1] = 'e' .. #v.err .. ':' .. v.err
    elseif type(v.ok) == 'string' then
      out[#out + 1] = 'o' .. #v.ok .. ':' .. v.ok
    else
      local n = 0
      while v[n + 1] ~= nil do n = n + 1 end
      out[#out + 1] = 't' .. n .. ':'
      for k = 1, n do
        local e = v[k]
        if type(e) == 'string' then
          out[#out + 1] = 's' .. #e .. ':' .. e -- the usual item, without a call
        else
          op_encode(e, out)
        end
      end
    end
  else
    out[#out + 1] = 'f'
  end
end

-- op_decode reads the value at p and returns it and the position after it.
local function op_decode(s, p)
  local tag = string.sub(s, p, p)
  if tag == 'T' then return true, p + 1 end
  if tag == 'f' then return false, p + 1 end
  local c = string.find(s, ':', p + 1, true)
  local n = tonumber(string.sub(s, p + 1, c - 1))
  if tag == 'i' then return n, c + 1 end
  if tag == 't' then
    local t = {}
    p = c + 1
    for k = 1, n do t[k], p = op_decode(s, p) end
    return t, p
  end
  local v = string.sub(s, c + 1, c + n)
  if tag == 'o' then v = {ok = v} elseif tag == 'e' then v = {err = v} end
  return v, c + n + 1
end

-- op_replay answers {reply} of operation id when it ran before, else nil.
local function op_replay(id)
  if id == '' then return nil end
  local v = redis.call('HGET', 'ops/replies', id)
  if not v then return nil end
  return {(op_decode(v, 1))}
end

-- op_prune removes up to OP_PRUNE records made at or before cutoff (ms),
-- oldest first, once half that many have expired; an entry that does not
-- read as '<ms> <id>' goes too. It runs when a record makes the list's
-- length a multiple of OP_CHECK (OP_CHECK < OP_PRUNE / 2, so pruning
-- outpaces recording): most runs it costs nothing, and at most
-- OP_PRUNE / 2 + OP_CHECK expired records wait for a prune.
local function op_prune(cutoff)
  local mark = redis.call('LINDEX', 'ops/queue', OP_PRUNE / 2 - 1)
  if not mark or (tonumber(string.match(mark, '^%d+') or '0')) > cutoff then return end
  local n, ids = 0, {}
  for _, e in ipairs(redis.call('LRANGE', 'ops/queue', 0, OP_PRUNE - 1)) do
    local at, id = string.match(e, '^(%d+) (.*)$')
    if at and tonumber(at) > cutoff then break end
    n = n + 1
    if id then ids[#ids + 1] = id end
  end
  redis.call('LTRIM', 'ops/queue', n, -1)
  if #ids > 0 then redis.call('HDEL', 'ops/replies', unpack(ids)) end
end

-- op_record keeps reply r of operation id and returns it. An error reply
-- (redis.error_reply: a malformed request) is not kept.
local function op_record(id, r)
  if id == '' or (type(r) == 'table' and r.err) then return r end
  local out = {}
  op_encode(r, out)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', 'ops/replies', id, table.concat(out))
  local len = redis.call('RPUSH', 'ops/queue', string.format('%d', now) .. ' ' .. id)
  if len % OP_CHECK == 0 then op_prune(now - OP_KEEP_MS) end
  return r
end
