-- breakout: a conference's breakout state (seed 002), owned by the breakout
-- service. Keys: breakout/<e164> (hash: version, meta, node, sent, updated),
-- breakout/<e164>/users (hash: user key -> JSON), breakouts/countdown (zset:
-- e164 -> deadline ms of a closing countdown), breakouts/all (set of e164
-- with breakout state).
-- ARGV[1] is the operation, ARGV[2] the e164; the rest depend on it.
-- Returns {'OK', ...} or {'ERR', code, detail}.
local op, e164 = ARGV[1], ARGV[2]
local bkey = 'breakout/' .. e164
local ukey = bkey .. '/users'

if op == 'load' then
  local h = redis.call('HMGET', bkey, 'version', 'meta', 'sent')
  local out = {'OK', h[1] or '0', h[2] or '', h[3] or '0'}
  for _, v in ipairs(redis.call('HGETALL', ukey)) do out[#out + 1] = v end
  return out
end

if op == 'delete' then
  redis.call('DEL', bkey, ukey)
  redis.call('ZREM', 'breakouts/countdown', e164)
  redis.call('SREM', 'breakouts/all', e164)
  return {'OK'}
end

if op == 'sent' then
  -- ARGV: version sent to the node.
  if redis.call('EXISTS', bkey) == 1 and tonumber(redis.call('HGET', bkey, 'sent') or '0') < tonumber(ARGV[3]) then
    redis.call('HSET', bkey, 'sent', ARGV[3])
  end
  return {'OK'}
end

if op == 'apply' then
  -- ARGV: want version, conference condition ('' | 'exists' | 'running'),
  -- meta ('' unchanged), countdown ('' unchanged, '0' none, else deadline
  -- ms), now ms, media node (kept with the meta), n, n pairs of user key
  -- and JSON to set, m, m keys to delete.
  local want, cond, meta, countdown, now, node = tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
  if cond ~= '' then
    local state = redis.call('HGET', conf_key(e164), 'state')
    if not state then return {'ERR', 'CONF_NOT_FOUND', e164} end
    if cond == 'running' and state ~= 'running' then return {'ERR', 'CONF_NOT_RUNNING', state} end
  end
  local cur = tonumber(redis.call('HGET', bkey, 'version') or '0')
  if cur ~= want then return {'ERR', 'CONFLICT', tostring(cur)} end
  local i = 9
  local n = tonumber(ARGV[i]); i = i + 1
  -- Set the users in chunks: one call per field is slow for a start of
  -- thousands.
  local chunk = {}
  for _ = 1, n do
    chunk[#chunk + 1] = ARGV[i]; chunk[#chunk + 1] = ARGV[i + 1]; i = i + 2
    if #chunk >= 400 then
      redis.call('HSET', ukey, unpack(chunk)); chunk = {}
    end
  end
  if #chunk > 0 then redis.call('HSET', ukey, unpack(chunk)) end
  local m = tonumber(ARGV[i]); i = i + 1
  for _ = 1, m do
    redis.call('HDEL', ukey, ARGV[i]); i = i + 1
  end
  if meta ~= '' then redis.call('HSET', bkey, 'meta', meta, 'node', node) end
  if countdown == '0' then
    redis.call('ZREM', 'breakouts/countdown', e164)
  elseif countdown ~= '' then
    redis.call('ZADD', 'breakouts/countdown', countdown, e164)
  end
  local next = cur + 1
  redis.call('HSET', bkey, 'version', next, 'updated', now)
  redis.call('SADD', 'breakouts/all', e164)
  return {'OK', tostring(next)}
end

return {'ERR', 'BAD_OP', op}
