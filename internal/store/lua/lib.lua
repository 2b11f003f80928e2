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
