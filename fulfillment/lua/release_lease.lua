-- Compare-and-delete a lease: never release one that expired and was taken by another.
-- KEYS[1]: the lease key
-- ARGV[1]: the holder's token
-- Returns 1 when released, 0 when the lease lapsed or another holder has it.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
