-- Publish an order update in one atomic step: append it to the order's capped history stream
-- (its entry id becomes the SSE event id), store it as the order's current state, and
-- publish the flask-sse envelope {"data", "id", "type"} on the order's channel; on one Redis
-- also keep the set of active orders (track_active.lua) and, when the caller knew the owner,
-- the account's stream (append_account.lua). On a Redis Cluster those live in other slots:
-- the caller writes them after (see notifier/placement.py). Compare-and-set: nothing is
-- written unless the order's sequence number is still the one the caller read.
-- KEYS[1]: the order's state hash
-- KEYS[2]: the order's history stream
-- KEYS[3]: the order's channel
-- KEYS[4..]: on one Redis, the set of non-terminal orders, then (owner known) the account's
--   event log, order index and channel; none on a cluster
-- ARGV[1]: the sequence number the caller read
-- ARGV[2]: the payload (JSON)
-- ARGV[3]: the history's length, approximately trimmed to
-- ARGV[4]: seconds the state and history live after this update (0: forever)
-- ARGV[5]: '1' when the update is terminal (the order leaves the active set), else '0'
-- ARGV[6]: now, in ms (the order's score in the active set)
-- ARGV[7]: the order id
-- ARGV[8]: the SSE event type
-- ARGV[9]: the order's progress after this update
-- ARGV[10]: the id of the outside event this update answers ('' for none): an event already
--   answered is refused, so a redelivered event never starts anything twice
-- ARGV[11]: the publish command: PUBLISH, or SPUBLISH (sharded) on a cluster
-- Returns the event id; false (nil) when the sequence moved on (the caller reads again); or
-- '!duplicate' when the outside event was answered before.
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local source = ARGV[10] ~= '' and ('source:' .. ARGV[10]) or nil
if source and redis.call('HEXISTS', KEYS[1], source) == 1 then return '!duplicate' end
if seq ~= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'data', ARGV[2])
redis.call('HSET', KEYS[1], 'seq', seq + 1, 'payload', ARGV[2], 'lastEventId', id,
  'progress', ARGV[9])
if source then redis.call('HSET', KEYS[1], source, id) end
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call(ARGV[11], KEYS[3],
  '{"data":' .. ARGV[2] .. ',"id":"' .. id .. '","type":"' .. ARGV[8] .. '"}')
if #KEYS > 3 then track_active({KEYS[4]}, {ARGV[7], ARGV[5], ARGV[6]}) end
if #KEYS > 4 then
  append_account({KEYS[5], KEYS[6], KEYS[7]},
    {ARGV[2], id, ARGV[3], ARGV[4], ARGV[6], ARGV[7], ARGV[8], ARGV[11]})
end
return id
