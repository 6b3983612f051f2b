-- Claim an order's start in one call: mark it alive (if we die before queueing its chain, the
-- reconciler takes over), record its owner when the start learned it from Salesforce
-- (record_owner.lua), and publish `queued` (publish.lua, compare-and-set: its reply is this
-- script's; nothing is marked or recorded unless the claim is made).
-- KEYS[1]: the order's alive mark
-- KEYS[2..]: publish.lua's keys (state hash, history, channel, then on one Redis the active
--   set and, when the owner is known (always, when an owner is recorded), the account's log,
--   order index and channel)
-- ARGV[1]: seconds the alive mark lasts while the run waits to be queued
-- ARGV[2]: record_owner.lua's arguments (JSON array of strings), or '' to record no owner
-- ARGV[3..]: publish.lua's arguments
local publish_keys, publish_args = {}, {}
for i = 2, #KEYS do publish_keys[#publish_keys + 1] = KEYS[i] end
for i = 3, #ARGV do publish_args[#publish_args + 1] = ARGV[i] end
local reply = publish(publish_keys, publish_args)
if not reply or reply == '!duplicate' then return reply end
redis.call('SET', KEYS[1], 'queued', 'EX', ARGV[1])
-- the account's order index is publish.lua's sixth key (none on a cluster)
if ARGV[2] ~= '' then record_owner({KEYS[2], KEYS[7]}, cjson.decode(ARGV[2])) end
return reply
