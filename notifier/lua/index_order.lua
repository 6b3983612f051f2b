-- Add an order to its account's index (its score: when first seen), and renew the index's
-- lifetime.
-- KEYS[1]: the account's order index (sorted set, scored by when first seen)
-- ARGV[1]: the order id
-- ARGV[2]: now, in ms, fractional (the order's score when the index did not hold it yet)
-- ARGV[3]: the index's lifetime in seconds, renewed by each call (0: forever)
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
