-- Read what a start decides on, in one call: the order's state and the ledger's facts.
-- KEYS[1]: the order's state hash
-- KEYS[2]: the order's ledger hash
-- Returns {seq, payload, progress, owner} of the state, then {failedStep, epoch} of the
-- ledger (false for a missing field).
local state = redis.call('HMGET', KEYS[1], 'seq', 'payload', 'progress', 'owner')
local ledger = redis.call('HMGET', KEYS[2], 'failedStep', 'epoch')
return {state[1], state[2], state[3], state[4], ledger[1], ledger[2]}
