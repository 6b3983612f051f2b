-- The orders with a message waiting in the broker's queue: each order id quoted in a message
-- (its `argsrepr` header), once, in one pass over kombu's lists.
-- KEYS[1..]: the queue's lists (kombu keeps one per priority step)
-- Returns the order ids.
local found, seen = {}, {}
for _, key in ipairs(KEYS) do
  for _, message in ipairs(redis.call('LRANGE', key, 0, -1)) do
    for id in string.gmatch(message, "'(801%w%w%w%w%w%w%w%w%w%w%w%w%w%w%w)'") do
      if not seen[id] then seen[id] = true; table.insert(found, id) end
    end
  end
end
return found
