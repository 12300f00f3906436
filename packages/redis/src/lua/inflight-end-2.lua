--[[
  A user's job ended (or was never enqueued): it leaves both sets, in one command.

  KEYS[1]  sorted set: the user's waiting jobs (see inflight-admit-2.lua)
  KEYS[2]  sorted set: the user's running jobs (see inflight-start-2.lua)
  ARGV[1]  member: the job id

  Returns how many entries were removed (0 or 1).
]]
return redis.call('ZREM', KEYS[1], ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
