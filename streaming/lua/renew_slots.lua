-- Extend the leases of the streams this process holds under a key (those still there).
-- KEYS[1]: the key's set of streams
-- ARGV[1]: the lease, in ms
-- ARGV[2..]: the members this process holds
local now = redis.call('TIME')
local until_ms = now[1] * 1000 + math.floor(now[2] / 1000) + ARGV[1]
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', until_ms, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
