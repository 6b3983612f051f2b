-- Extend a lease, only while its holder still holds it.
-- KEYS[1]: the lease key
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease's new lifetime, in ms
-- Returns 1 when extended, 0 when the lease lapsed or another holder has it.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
