--[[
  Settles a token-bucket reservation to the real usage once its job has ended.

  KEYS[1]  the bucket the reservation was taken from (token-bucket-take-1.lua)
  ARGV[1]  delta: real usage minus the reservation (usually negative: tokens go back)

  Returns the tokens the bucket holds after the call. A bucket that expired meanwhile is full
  already: nothing to give back, nothing to take. The bucket never holds more than its limit,
  and never less than zero.
]]
local key = KEYS[1]
local state = redis.call('HMGET', key, 'tokens', 'ts', 'limit', 'window')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local limit = tonumber(state[3])
local window = tonumber(state[4])
if tokens == nil or ts == nil or limit == nil or window == nil then
  return -1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
tokens = math.min(limit, tokens + math.max(0, now - ts) * (limit / window))
tokens = math.max(0, math.min(limit, tokens - tonumber(ARGV[1])))
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', now)
return math.floor(tokens)
