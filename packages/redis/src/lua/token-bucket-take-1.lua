--[[
  Tokens per minute as a token bucket, one atomic decision per call: the bucket holds up to
  `limit` tokens and refills at limit per window, continuously; a request takes its reservation
  (prompt estimate + max_tokens) whole or not at all. The job's end gives back what it did not
  use (token-bucket-settle-1.lua).

  KEYS[1]  hash: tokens (what the bucket held at ts), ts (Redis ms), limit, window
  ARGV[1]  tokens to take
  ARGV[2]  limit: tokens per window (a full bucket)
  ARGV[3]  window, ms (60000)

  Returns { taken (1|0), remaining (after the call), wait_ms (until this request would pass;
  0 when taken), full_ms (until the bucket is full again) }.

  The clock is Redis's own TIME, so every api replica decides on the same clock. A refusal takes
  nothing. The key lives two windows after its last use (a full bucket needs no key).
]]
local key = KEYS[1]
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = limit / window

local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = limit
else
  tokens = math.min(limit, tokens + math.max(0, now - ts) * rate)
end

local taken = 0
local wait = 0
if tokens >= amount then
  tokens = tokens - amount
  taken = 1
else
  wait = math.ceil((amount - tokens) / rate)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', now, 'limit', limit, 'window', window)
redis.call('PEXPIRE', key, window * 2)
return { taken, math.floor(tokens), wait, math.ceil((limit - tokens) / rate) }
