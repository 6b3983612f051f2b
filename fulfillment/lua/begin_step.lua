-- Begin a step in one call: mark the order alive (its step is running) and the step's epoch
-- running, but only when it is the order's current epoch (a stale message must not claim a
-- newer epoch's step), and read everything the step decides on.
-- KEYS[1]: the order's alive mark
-- KEYS[2]: the order's ledger hash
-- KEYS[3]: the order's state hash
-- ARGV[1]: the step's epoch
-- ARGV[2]: seconds the alive mark lasts (renewed while the step runs)
-- Returns {seq, payload, progress, owner} of the state, then {epoch, context, whmcsOrder,
-- failedStep} of the ledger (false for a missing field).
redis.call('SET', KEYS[1], 'running', 'EX', ARGV[2])
local ledger = redis.call('HMGET', KEYS[2], 'epoch', 'context', 'whmcsOrder', 'failedStep')
if tonumber(ledger[1] or '0') == tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'runningEpoch', ARGV[1])
end
local state = redis.call('HMGET', KEYS[3], 'seq', 'payload', 'progress', 'owner')
return {state[1], state[2], state[3], state[4], ledger[1], ledger[2], ledger[3], ledger[4]}
