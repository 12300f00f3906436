--[[
  Appends one event to a job's event log and publishes it on the job's channel: the event's
  bytes cross the wire once, for both.

  KEYS[1]  the job's event log (a stream)
  KEYS[2]  the job's record (a hash): its TTL is renewed with the log's
  ARGV[1]  the encoded event
  ARGV[2]  the job's channel
  ARGV[3]  the log's cap (entries; the oldest go)
  ARGV[4]  TTL to set on both keys, ms; 0: leave the TTLs as they are
  ARGV[5]  1: Redis Cluster, publish with SPUBLISH (the channel shares the keys' {<jobId>} slot)

  Returns the number of subscribers the publish reached.
]]
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[3], '*', 'e', ARGV[1])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if ARGV[5] == '1' then
  return redis.call('SPUBLISH', ARGV[2], ARGV[1])
end
return redis.call('PUBLISH', ARGV[2], ARGV[1])
