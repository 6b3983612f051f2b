-- Remove released streams from their keys' sets: many keys in one call, not a ZREM each.
-- Returns how many streams were removed.
-- KEYS[1..]: the keys' sets of streams
-- ARGV[1..]: for each key in order, how many of its members follow, then those members
local at, removed = 1, 0
for _, key in ipairs(KEYS) do
  local count = tonumber(ARGV[at])
  removed = removed + redis.call('ZREM', key, unpack(ARGV, at + 1, at + count))
  at = at + count + 1
end
return removed
