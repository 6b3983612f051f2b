-- Take a lease, and read a ledger field with it: a critical section usually begins by asking
-- what the ledger says now (another holder may have just written it).
-- KEYS[1]: the lease key
-- KEYS[2]: the order's ledger hash
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease's lifetime, in ms
-- ARGV[3]: the ledger field to read
-- Returns {1, the field's value} when taken, {0} when another holder has it.
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
return {1, redis.call('HGET', KEYS[2], ARGV[3])}
