--[[
  Reserves tokens against a daily quota, atomically: all or nothing.

  KEYS[1]  string counter: tokens used or reserved today by one user
  ARGV[1]  tokens to reserve (prompt estimate + max_tokens)
  ARGV[2]  daily limit
  ARGV[3]  unix time (s) at which the counter expires: the end of the UTC day

  Returns { reserved (1|0), used } — used: the counter after the call.
]]
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + amount > limit then
  return { 0, used }
end
used = redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIREAT', KEYS[1], tonumber(ARGV[3]))
return { 1, used }
