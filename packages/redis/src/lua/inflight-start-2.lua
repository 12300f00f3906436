--[[
  A user's job started on a worker: it stops counting as waiting and counts as running.
  Idempotent (a job re-run after a failure starts again: its lease is renewed).

  KEYS[1]  sorted set: the user's waiting jobs (see inflight-admit-2.lua)
  KEYS[2]  sorted set: the user's running jobs, score = expiry (Redis ms)
  ARGV[1]  member: the job id
  ARGV[2]  lease, ms: the entry stops counting this long from now unless renewed
           (inflight-renew-1.lua) by the api that follows the job

  Returns 1.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[2], lease)
return 1
