-- What a new stream reads of its order, atomically: the owner, the state and the catch-up.
-- KEYS[1]: the order's state hash
-- KEYS[2]: the order's history stream
-- KEYS[3]: the order's "unknown" marker
-- ARGV[1]: the event id to resume after, or '' for a snapshot
-- Returns {owner, unknown (0/1), payload, lastEventId, resumed (0/1), entries, summary}:
-- entries are the events after ARGV[1] when the history still holds it (resumed = 1), else
-- all of them; summary is what was ordered ('' when no lookup read it).
local state = redis.call('HMGET', KEYS[1], 'owner', 'payload', 'lastEventId', 'summary')
local unknown = redis.call('EXISTS', KEYS[3])
local resumed = 0
local entries
if ARGV[1] ~= '' and #redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1], 'COUNT', 1) == 1 then
  resumed = 1
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+')
else
  entries = redis.call('XRANGE', KEYS[2], '-', '+')
end
return {state[1] or '', unknown, state[2] or '', state[3] or '', resumed, entries, state[4] or ''}
