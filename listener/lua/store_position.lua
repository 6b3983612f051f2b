-- Store the listener's position in the event stream, only while this process holds the
-- lease: a listener that lost it (paused, then woke) must not move a newer holder back.
-- KEYS[1]: the lease key
-- KEYS[2]: the position hash
-- ARGV[1]: the holder's token
-- ARGV[2]: the replay id (hex)
-- ARGV[3]: now (ms)
-- ARGV[4]: the topic
-- Returns 1 when stored, 0 when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'replayId', ARGV[2], 'at', ARGV[3], 'topic', ARGV[4])
return 1
