-- Keep the set of non-terminal orders (the reconciler's): add an order or refresh its score,
-- or remove it once terminal, unless a newer run added it again since (a later score).
-- KEYS[1]: the set of non-terminal orders, scored by their last update (ms)
-- ARGV[1]: the order id
-- ARGV[2]: '1' when the update is terminal (the order leaves the set), else '0'
-- ARGV[3]: the update's time, in ms
if ARGV[2] == '1' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if score and tonumber(score) <= tonumber(ARGV[3]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
