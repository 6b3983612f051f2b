-- Take a stream slot under a key unless its live streams are at the limit. Leases end by
-- Redis's clock; lapsed ones are dropped first.
-- KEYS[1]: the key's set of streams (member: "<process>:<n>", score: lease end, ms)
-- ARGV[1]: the new member
-- ARGV[2]: the limit
-- ARGV[3]: the lease, in ms
-- Returns 1 if taken, else 0.
local now = redis.call('TIME')
local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now_ms + ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
