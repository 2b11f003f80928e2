-- sip_call: the calls the SIP nodes of a platform route, shared so that
-- whichever node sees a call end (a BYE may come through the other
-- datacenter) ends it once, and a call nobody ends is ended by its
-- session timer on any node.
--   sip/call/<call-id>    hash: the call's fields (internal/store/sip.go)
--   sip/calls/deadline    zset: call-id -> when the call is over unless
--                          refreshed (Unix ms)
-- ARGV: 'start', call-id, deadline, field, value, ...
--   Records a new call; one already recorded is left as it is.
--   Returns {'OK', 'created'} or {'OK', 'exists'}.
-- ARGV: 'update', call-id, unless, deadline, field, value, ...
--   Sets the fields of a recorded call, unless its field `unless` is set
--   already ('' : always), and its deadline when one is given ('').
--   Returns {'OK', 'updated'}, {'OK', 'skipped'} or {'OK', 'absent'}.
-- ARGV: 'end', call-id, until, from-tag, to-tag, field, value, ...
--   Ends a call in progress: sets these fields and state=ended, and keeps
--   it until `until` (Unix ms) for its end to be reported; the node that
--   reports it then forgets it ('forget'). A node that dies first leaves
--   it to the sweep ('expire'), which reports it again.
--   from-tag and to-tag, unless '', are those of the request that ends
--   it (a BYE): they must name one of the call's dialogs, the caller's
--   (ftag, ttag) or the callee's (ttag, ftag); a call not answered yet
--   has no ttag and the caller's ftag is enough.
--   Returns {'OK', 'ended', {field, value, ...}} for the first end,
--   {'OK', 'again'} for a call ended before, {'OK', 'absent'}, or
--   {'OK', 'mismatch'} when the tags name no dialog of the call (nothing
--   changed).
-- ARGV: 'forget', call-id, ...: drops ended calls (reported).
-- ARGV: 'expire', now, limit, until, end:
--   Takes up to limit calls whose deadline passed: a call in progress is
--   ended there (end time `end`, reason session-expired when answered,
--   no-answer with status 408 when not), a call ended before whose
--   report was not confirmed is taken again; each is kept until `until`.
--   Returns {'OK', {call-id, 'first' | 'again', field, value, ...}, ...}.
local function ckey(id) return 'sip/call/' .. id end

local function set_pairs(key, from)
  if #ARGV >= from + 1 then
    local args = {'HSET', key}
    for k = from, #ARGV do args[#args + 1] = ARGV[k] end
    redis.call(unpack(args))
  end
end

local function hash_pairs(key)
  return redis.call('HGETALL', key)
end

local op = ARGV[1]
if op == 'start' then
  local id, deadline = ARGV[2], ARGV[3]
  if redis.call('EXISTS', ckey(id)) == 1 then return {'OK', 'exists'} end
  set_pairs(ckey(id), 4)
  redis.call('ZADD', 'sip/calls/deadline', deadline, id)
  return {'OK', 'created'}
elseif op == 'update' then
  local id, unless, deadline = ARGV[2], ARGV[3], ARGV[4]
  local key = ckey(id)
  if redis.call('EXISTS', key) == 0 or redis.call('HGET', key, 'state') == 'ended' then return {'OK', 'absent'} end
  if unless ~= '' and redis.call('HEXISTS', key, unless) == 1 then return {'OK', 'skipped'} end
  set_pairs(key, 5)
  if deadline ~= '' then redis.call('ZADD', 'sip/calls/deadline', deadline, id) end
  return {'OK', 'updated'}
elseif op == 'end' then
  local id, untilms = ARGV[2], ARGV[3]
  local key = ckey(id)
  if redis.call('EXISTS', key) == 0 then return {'OK', 'absent'} end
  if redis.call('HGET', key, 'state') == 'ended' then return {'OK', 'again'} end
  local rf, rt = ARGV[4], ARGV[5]
  local f = redis.call('HGET', key, 'ftag') or ''
  if rf ~= '' and f ~= '' then
    local t = redis.call('HGET', key, 'ttag') or ''
    local caller = rf == f and (t == '' or rt == t)
    local callee = t ~= '' and rf == t and rt == f
    if not caller and not callee then return {'OK', 'mismatch'} end
  end
  set_pairs(key, 6)
  redis.call('HSET', key, 'state', 'ended')
  redis.call('ZADD', 'sip/calls/deadline', untilms, id)
  return {'OK', 'ended', hash_pairs(key)}
elseif op == 'forget' then
  for k = 2, #ARGV do
    local key = ckey(ARGV[k])
    if redis.call('HGET', key, 'state') == 'ended' then
      redis.call('DEL', key)
      redis.call('ZREM', 'sip/calls/deadline', ARGV[k])
    end
  end
  return {'OK'}
elseif op == 'expire' then
  local now, limit, untilms, endms = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
  local due = redis.call('ZRANGEBYSCORE', 'sip/calls/deadline', '-inf', now, 'LIMIT', 0, limit)
  local reply = {'OK'}
  for _, id in ipairs(due) do
    local key = ckey(id)
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', 'sip/calls/deadline', id)
    else
      local how = 'again'
      if redis.call('HGET', key, 'state') ~= 'ended' then
        how = 'first'
        redis.call('HSET', key, 'state', 'ended', 'end', endms)
        if redis.call('HEXISTS', key, 'answer') == 1 then
          redis.call('HSET', key, 'reason', 'session-expired')
        else
          redis.call('HSET', key, 'reason', 'no-answer')
          if redis.call('HEXISTS', key, 'status') == 0 then redis.call('HSET', key, 'status', '408') end
        end
      end
      redis.call('ZADD', 'sip/calls/deadline', untilms, id)
      local fields = hash_pairs(key)
      table.insert(fields, 1, how)
      table.insert(fields, 1, id)
      reply[#reply + 1] = fields
    end
  end
  return reply
end
return {'ERR', 'BAD_OP', tostring(op)}
