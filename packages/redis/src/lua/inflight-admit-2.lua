--[[
  Admits one job against a user's in-flight caps, atomically: trim expired entries, count,
  add. One round trip, exact across api replicas.

  KEYS[1]  sorted set: the user's jobs waiting to start, score = expiry (Redis ms)
  KEYS[2]  sorted set: the user's jobs running, score = expiry (Redis ms)
  ARGV[1]  max_waiting: most jobs of the user waiting at once (0 = no cap)
  ARGV[2]  max_concurrent: most jobs of the user waiting or running at once (0 = no cap)
  ARGV[3]  member: the job id
  ARGV[4]  lease, ms: the entry stops counting this long after admission unless the job starts
           first (the queue deadline: a job never waits longer), so an api that crashed cannot
           hold a user's place for long

  Returns { admitted (1|0), waiting, running } — counts before this job, expired entries gone.
  A refused job adds nothing.

  The clock is Redis's own TIME, so every replica trims on the same clock.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local waiting = redis.call('ZCARD', KEYS[1])
local running = redis.call('ZCARD', KEYS[2])
local maxWaiting = tonumber(ARGV[1])
local maxConcurrent = tonumber(ARGV[2])
if (maxWaiting > 0 and waiting >= maxWaiting) or (maxConcurrent > 0 and waiting + running >= maxConcurrent) then
  return { 0, waiting, running }
end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
-- Every member expires within one lease of its admission: the key may go with the newest.
redis.call('PEXPIRE', KEYS[1], lease)
return { 1, waiting, running }
