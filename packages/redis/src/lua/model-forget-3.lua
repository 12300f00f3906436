--[[
  Forgets a model no worker has registered for a while (MODEL_FORGET_AFTER_MS), so /health and
  /v1/models stop reporting a model whose workers went away for good. Atomic with the last-seen
  check: a worker that registered the model since the caller's read keeps it.

  KEYS[1]  set P:models: every registered model
  KEYS[2]  sorted set P:models:seen: model → last heartbeat (ms) of a worker serving it
  KEYS[3]  set P:model:<model>:workers
  ARGV[1]  model
  ARGV[2]  forget after, ms

  A model without a last-seen score (registered before scores were kept) gets one now: its clock
  starts. Returns 1 if the model was forgotten, else 0.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seen = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not seen then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  return 0
end
if now - tonumber(seen) < tonumber(ARGV[2]) then
  return 0
end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
