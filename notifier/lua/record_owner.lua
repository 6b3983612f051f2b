-- Record an order's owner in its state hash.
-- KEYS[1]: the order's state hash
-- ARGV[1]: the account id
-- ARGV[2]: the lifetime, in seconds, to give a hash that holds no published state yet (0:
--   leave it without one). A hash that holds state keeps the lifetime its last publish gave it.
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'payload') == 0 and tonumber(ARGV[2]) > 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
