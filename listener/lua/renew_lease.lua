-- Extend the listener's lease if this process still holds it.
-- KEYS[1]: the lease key
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease's new lifetime (ms)
-- Returns 1 when renewed, 0 when the lease is another's (or gone).
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
