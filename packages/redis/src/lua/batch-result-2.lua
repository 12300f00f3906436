--[[
  Records the end of one request of a batch, once: whoever ends it (its worker, a re-run of it,
  a retry of this call) and however often, it is counted one time.

  KEYS[1]  hash: the batch's results, field = request index
  KEYS[2]  hash: the batch (fields total, completed, failed, …; the api writes it)
  ARGV[1]  the request's index
  ARGV[2]  its BatchResult, JSON
  ARGV[3]  `completed`, `failed` or `cancelled` (a cancelled batch's request that never started):
           the counter it adds to

  Returns { recorded (1|0), completed, failed, total } after the call. The results live as long
  as the batch (its TTL is copied); a batch whose hash is gone (expired, deleted) records nothing.
]]
if redis.call('EXISTS', KEYS[2]) == 0 then
  return { 0, 0, 0, 0 }
end
local recorded = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if recorded == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
local counts = redis.call('HMGET', KEYS[2], 'completed', 'failed', 'total')
return { recorded, tonumber(counts[1] or '0'), tonumber(counts[2] or '0'), tonumber(counts[3] or '0') }
