-- A step of an epoch ended without dying: clear the order's running mark, and its strikes
-- when the step progressed. Only the epoch's own mark is cleared: after a takeover the new
-- epoch's step owns it.
-- KEYS[1]: the order's ledger hash
-- ARGV[1]: the step's epoch
-- ARGV[2]: '1' when the step progressed (the strikes start over), else '0'
if redis.call('HGET', KEYS[1], 'runningEpoch') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'runningEpoch')
end
if ARGV[2] == '1' then redis.call('HDEL', KEYS[1], 'strikes') end
