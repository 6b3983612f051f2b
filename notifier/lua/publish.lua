-- Publish an order update in one atomic step: append it to the order's capped history stream
-- (its entry id becomes the SSE event id), store it as the order's current state, keep the
-- set of active orders, and PUBLISH the flask-sse envelope {"data", "id", "type"} on the
-- order's channel. Compare-and-set: nothing is written unless the order's sequence number is
-- still the one the caller read.
-- KEYS[1]: the order's state hash
-- KEYS[2]: the order's history stream
-- KEYS[3]: the set of non-terminal orders, scored by their last update (ms)
-- KEYS[4..]: the owning account's event log and order index, when the caller knew the owner
--   (read with the state): the account stream gets the update in the same step
-- ARGV[1]: the sequence number the caller read
-- ARGV[2]: the payload (JSON)
-- ARGV[3]: the order's channel
-- ARGV[4]: the history's length, approximately trimmed to
-- ARGV[5]: seconds the state and history live after this update (0: forever)
-- ARGV[6]: '1' when the update is terminal (the order leaves the active set), else '0'
-- ARGV[7]: now, in ms (the order's score in the active set)
-- ARGV[8]: the order id
-- ARGV[9]: the SSE event type
-- ARGV[10]: the order's progress after this update
-- ARGV[11]: the id of the outside event this update answers ('' for none): an event already
--   answered is refused, so a redelivered event never starts anything twice
-- ARGV[12]: the owning account's channel ('' when the caller knew no owner)
-- Returns the event id; false (nil) when the sequence moved on (the caller reads again); or
-- '!duplicate' when the outside event was answered before.
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
local source = ARGV[11] ~= '' and ('source:' .. ARGV[11]) or nil
if source and redis.call('HEXISTS', KEYS[1], source) == 1 then return '!duplicate' end
if seq ~= tonumber(ARGV[1]) then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'data', ARGV[2])
redis.call('HSET', KEYS[1], 'seq', seq + 1, 'payload', ARGV[2], 'lastEventId', id,
  'progress', ARGV[10])
if source then redis.call('HSET', KEYS[1], source, id) end
if ARGV[6] == '1' then
  redis.call('ZREM', KEYS[3], ARGV[8])
else
  redis.call('ZADD', KEYS[3], ARGV[7], ARGV[8])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', ARGV[3],
  '{"data":' .. ARGV[2] .. ',"id":"' .. id .. '","type":"' .. ARGV[9] .. '"}')
if #KEYS > 3 then
  -- The payload with its id in the order's stream, for pages that joined a snapshot.
  local tagged = '{"eventId":"' .. id .. '",' .. string.sub(ARGV[2], 2)
  -- Room for about fifty orders' histories: a resuming account stream rarely needs more.
  local cursor = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4] * 50, '*', 'data', tagged)
  redis.call('ZADD', KEYS[5], 'NX', ARGV[7], ARGV[8])
  if ttl > 0 then
    redis.call('EXPIRE', KEYS[4], ttl)
    redis.call('EXPIRE', KEYS[5], ttl)
  end
  redis.call('PUBLISH', ARGV[12],
    '{"data":' .. tagged .. ',"id":"' .. cursor .. '","type":"' .. ARGV[9] .. '"}')
end
return id
