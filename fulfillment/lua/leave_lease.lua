-- Leave a critical section in one call: write what it produced to the ledger, then release
-- the lease (compare-and-delete: never one that expired and was taken by another).
-- KEYS[1]: the lease key
-- KEYS[2]: the order's ledger hash
-- ARGV[1]: the holder's token
-- ARGV[2]: the ledger field to write ('' for none)
-- ARGV[3]: its value
-- ARGV[4]: the ledger's lifetime, in seconds
-- Returns 1 when released, 0 when the lease had lapsed (the write is made either way).
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
