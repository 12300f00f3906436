--[[
  Adds a job to its user's index (a sorted set by creation time), drops entries older than the
  index's horizon and beyond its cap, and renews its TTL, in one command.

  KEYS[1]  the user's job index
  ARGV[1]  the job's creation time, epoch ms (its score)
  ARGV[2]  the job id
  ARGV[3]  horizon, ms: entries created longer ago than this go (and the key's TTL)
  ARGV[4]  cap: at most this many entries are kept (the newest)

  Returns 1.
]]
local created = tonumber(ARGV[1])
local horizon = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], created, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', created - horizon)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[1], horizon)
return 1
