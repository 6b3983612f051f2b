-- Add an order's update to its account's stream: append it to the account's log (the payload
-- tagged with its event id in the order's history, for pages that joined a snapshot), index
-- the order (index_order.lua), and publish the envelope on the account's channel.
-- KEYS[1]: the account's event log (stream)
-- KEYS[2]: the account's order index
-- KEYS[3]: the account's channel
-- ARGV[1]: the payload (JSON)
-- ARGV[2]: its event id in the order's history
-- ARGV[3]: an order's history length (the log keeps about fifty orders' worth)
-- ARGV[4]: seconds the log and index live after this update (0: forever)
-- ARGV[5]: now, in ms (the order's score when the index did not hold it yet)
-- ARGV[6]: the order id
-- ARGV[7]: the SSE event type
-- ARGV[8]: the publish command: PUBLISH, or SPUBLISH on a cluster
-- Returns the log entry's id (the account stream's SSE event id).
local tagged = '{"eventId":"' .. ARGV[2] .. '",' .. string.sub(ARGV[1], 2)
-- Room for about fifty orders' histories: a resuming account stream rarely needs more.
local cursor = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3] * 50, '*', 'data', tagged)
index_order({KEYS[2]}, {ARGV[6], ARGV[5], ARGV[4]})
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
redis.call(ARGV[8], KEYS[3],
  '{"data":' .. tagged .. ',"id":"' .. cursor .. '","type":"' .. ARGV[7] .. '"}')
return cursor
