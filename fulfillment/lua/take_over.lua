-- Take an order over when nobody is working on it (it has no alive mark): bump its epoch, so
-- messages of the old epoch are stale, and mark it alive, in one step.
-- KEYS[1]: the order's alive mark
-- KEYS[2]: the order's ledger hash
-- ARGV[1]: seconds the new alive mark lasts
-- Returns the new epoch, or false (nil) when the order is alive.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local epoch = redis.call('HINCRBY', KEYS[2], 'epoch', 1)
redis.call('SET', KEYS[1], 'taken-over', 'EX', ARGV[1])
return epoch
