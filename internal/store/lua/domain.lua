-- domain: publish a user domain's info and configured licence.
-- ARGV: moid, configured (canonical limits), ninfo, field, value, ...,
--   nlimits, class, limit, ...
-- The limits are written only when the configured licence changed since it
-- was last written, so limits set at run time survive a restart. Counts are
-- never touched, only created at 0.
local moid, configured = ARGV[1], ARGV[2]
local ninfo = tonumber(ARGV[3])
local args = {'HSET', 'domain/' .. moid .. '/info'}
for k = 4, 3 + 2 * ninfo do args[#args + 1] = ARGV[k] end
redis.call(unpack(args))
local lkey = 'domain/' .. moid .. '/license'
local b = 4 + 2 * ninfo
local nlim = tonumber(ARGV[b])
local changed = redis.call('HGET', lkey, 'license') ~= configured
for k = 0, nlim - 1 do
  local class, limit = ARGV[b + 1 + 2 * k], ARGV[b + 2 + 2 * k]
  if changed then redis.call('HSET', lkey, class .. '_confnumlimit', limit) end
  redis.call('HSETNX', lkey, class .. '_confnum', 0)
end
if changed then redis.call('HSET', lkey, 'license', configured) end
return {'OK', changed and '1' or '0'}
