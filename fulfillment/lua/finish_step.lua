-- End a step in one call: record the ledger's new facts, clear the epoch's running mark and
-- the strikes (the step progressed), leave the alive mark for what comes next, record the
-- order's owner when the step learned it (record_owner.lua), then publish the step's update
-- (publish.lua, compare-and-set: its reply is this script's).
-- KEYS[1]: the order's alive mark
-- KEYS[2]: the order's ledger hash
-- KEYS[3..]: publish.lua's keys (state hash, history, channel, then on one Redis the active
--   set and, when the owner is known (always, when an owner is recorded), the account's log,
--   order index and channel)
-- ARGV[1]: the step's epoch
-- ARGV[2]: seconds the alive mark lasts while the next step waits ('0': delete it)
-- ARGV[3]: the ledger's new fields (JSON object of strings; '{}' for none)
-- ARGV[4]: the ledger's lifetime, in seconds
-- ARGV[5]: record_owner.lua's arguments (JSON array of strings), or '' to record no owner
-- ARGV[6..]: publish.lua's arguments, or none to publish nothing
-- Returns publish.lua's reply, or false when nothing was published.
local fields = cjson.decode(ARGV[3])
local written = false
for field, value in pairs(fields) do
  redis.call('HSET', KEYS[2], field, value)
  written = true
end
if written then redis.call('EXPIRE', KEYS[2], ARGV[4]) end
if redis.call('HGET', KEYS[2], 'runningEpoch') == ARGV[1] then
  redis.call('HDEL', KEYS[2], 'runningEpoch')
end
redis.call('HDEL', KEYS[2], 'strikes')
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], 'queued', 'EX', ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
if ARGV[5] ~= '' then
  -- the account's order index is publish.lua's sixth key (none on a cluster)
  record_owner({KEYS[3], KEYS[8]}, cjson.decode(ARGV[5]))
end
if #ARGV < 6 then return false end
local publish_keys, publish_args = {}, {}
for i = 3, #KEYS do publish_keys[#publish_keys + 1] = KEYS[i] end
for i = 6, #ARGV do publish_args[#publish_args + 1] = ARGV[i] end
return publish(publish_keys, publish_args)
