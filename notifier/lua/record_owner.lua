-- Record an order's owner in its state hash, and (on one Redis) the order in its account's
-- index (index_order.lua; on a Redis Cluster the index lives in the account's slot and the
-- caller adds it there: see notifier/placement.py).
-- KEYS[1]: the order's state hash
-- KEYS[2..]: the account's order index (sorted set, scored by when first seen); none on a
--   cluster
-- ARGV[1]: the account id
-- ARGV[2]: the lifetime, in seconds, to give a hash that holds no published state yet (0:
--   leave it without one). A hash that holds state keeps the lifetime its last publish gave it.
-- ARGV[3]: the order id
-- ARGV[4]: now, in ms, fractional (the order's score when the index did not hold it yet)
-- ARGV[5]: the index's lifetime in seconds, renewed by each order added (0: forever)
-- ARGV[6]: the order's summary (JSON: number, placed, total, items), or '' when not read
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'summary', ARGV[6]) end
if redis.call('HEXISTS', KEYS[1], 'payload') == 0 and tonumber(ARGV[2]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if #KEYS > 1 then index_order({KEYS[2]}, {ARGV[3], ARGV[4], ARGV[5]}) end
