--[[
  Writes a job's record (a hash) and its TTL, in one command.

  KEYS[1]  the job's record
  ARGV[1]  TTL, ms
  ARGV[2…] field, value, field, value, …

  Returns 1.
]]
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
