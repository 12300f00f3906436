--[[
  Renews the leases of a user's running jobs that one api still follows.

  KEYS[1]  sorted set: the user's running jobs, score = expiry (Redis ms)
  ARGV[1]  lease, ms: new expiry = now + lease
  ARGV[2…] members: job ids; one that already left the set (ended, expired) is not added back

  Returns the number of leases renewed.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local renewed = 0
for i = 2, #ARGV do
  renewed = renewed + redis.call('ZADD', KEYS[1], 'XX', 'CH', now + lease, ARGV[i])
end
if renewed > 0 then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return renewed
