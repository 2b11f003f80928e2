-- sip_register: a REGISTER's change to the contacts of one address of
-- record (RFC 3261 §10.3), shared by every SIP node of the platform.
--   sip/reg/<aor>    hash: contact URI -> binding
--   sip/regs/until   zset: aor -> when its last binding expires (Unix ms)
-- A binding is '<expires ms>\t<q>\t<call-id>\t<cseq>\t<node>\t<source>\t<transport>'.
-- Expired bindings are dropped whenever their record is touched, and by
-- the sweep ('sweep') for records nobody touches: the embedded server runs
-- no key expiry.
-- ARGV: 'register', aor, now, call-id, cseq, node, source, transport,
--       wildcard ('1': Contact: * with Expires: 0), then per contact:
--       uri, expires (s, 0 removes), q.
--   Returns {'OK', uri, expires ms, q, ...} with every binding after the
--   change, or {'ERR', 'ORDER', uri} when a binding of the same Call-ID
--   has a CSeq as high or higher (a request out of order: nothing changes).
-- ARGV: 'sweep', now, limit: drops the expired bindings of up to limit
--   records due; returns {'OK', records looked at}.
local SEP = '\t'

local function decode(v)
  local f, i = {}, 1
  for part in string.gmatch(v .. SEP, '([^' .. SEP .. ']*)' .. SEP) do
    f[i] = part
    i = i + 1
  end
  return {expires = tonumber(f[1]) or 0, q = f[2] or '', callid = f[3] or '', cseq = tonumber(f[4]) or 0,
          node = f[5] or '', source = f[6] or '', transport = f[7] or ''}
end

local function encode(b)
  return table.concat({string.format('%d', b.expires), b.q, b.callid, string.format('%d', b.cseq), b.node, b.source, b.transport}, SEP)
end

-- live reads the record's bindings, dropping those expired at now.
local function live(key, now)
  local cur = redis.call('HGETALL', key)
  local binds, order, dead = {}, {}, {}
  for k = 1, #cur, 2 do
    local b = decode(cur[k + 1])
    if b.expires > now then
      binds[cur[k]] = b
      order[#order + 1] = cur[k]
    else
      dead[#dead + 1] = cur[k]
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return binds, order
end

-- settle writes when the record's last binding expires, or forgets it.
local function settle(aor, key, binds, order)
  local last = 0
  for _, uri in ipairs(order) do
    local b = binds[uri]
    if b and b.expires > last then last = b.expires end
  end
  if last == 0 then
    redis.call('DEL', key)
    redis.call('ZREM', 'sip/regs/until', aor)
  else
    redis.call('ZADD', 'sip/regs/until', last, aor)
  end
end

local op = ARGV[1]
if op == 'sweep' then
  local now, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
  local due = redis.call('ZRANGEBYSCORE', 'sip/regs/until', '-inf', now, 'LIMIT', 0, limit)
  for _, aor in ipairs(due) do
    local key = 'sip/reg/' .. aor
    local binds, order = live(key, now)
    settle(aor, key, binds, order)
  end
  return {'OK', #due}
end
if op ~= 'register' then return {'ERR', 'BAD_OP', tostring(op)} end

local aor, now, callid, cseq = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local node, source, transport, wildcard = ARGV[6], ARGV[7], ARGV[8], ARGV[9] == '1'
local key = 'sip/reg/' .. aor
local binds, order = live(key, now)

local function out_of_order(uri)
  local b = binds[uri]
  return b and b.callid == callid and b.cseq >= cseq
end

if wildcard then
  for _, uri in ipairs(order) do
    if out_of_order(uri) then return {'ERR', 'ORDER', uri} end
  end
  binds, order = {}, {}
else
  for k = 10, #ARGV - 2, 3 do
    if out_of_order(ARGV[k]) then return {'ERR', 'ORDER', ARGV[k]} end
  end
  for k = 10, #ARGV - 2, 3 do
    local uri, expires, q = ARGV[k], tonumber(ARGV[k + 1]) or 0, ARGV[k + 2]
    if expires <= 0 then
      binds[uri] = nil
    else
      if not binds[uri] then order[#order + 1] = uri end
      binds[uri] = {expires = now + expires * 1000, q = q, callid = callid, cseq = cseq,
                    node = node, source = source, transport = transport}
    end
  end
end

redis.call('DEL', key)
local reply, kept = {'OK'}, {}
for _, uri in ipairs(order) do
  local b = binds[uri]
  if b then
    redis.call('HSET', key, uri, encode(b))
    kept[#kept + 1] = uri
    reply[#reply + 1] = uri
    reply[#reply + 1] = string.format('%d', b.expires)
    reply[#reply + 1] = b.q
  end
end
settle(aor, key, binds, kept)
return reply
