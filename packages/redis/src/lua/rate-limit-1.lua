--[[
  Sliding-window request limiter (log method), one atomic decision per call.

  KEYS[1]  sorted set: one member per admitted request, score = admission time (ms)
  ARGV[1]  limit: requests allowed per window
  ARGV[2]  window length, ms
  ARGV[3]  member: unique id of this request

  Returns { allowed (1|0), remaining, reset_ms, count }
    reset_ms: ms until the oldest admitted request leaves the window, i.e. the earliest moment
              a refused request would pass (0 when the window is empty).

  The clock is Redis's own TIME, so every api replica decides on the same clock.
  A refused request adds nothing: a client hammering while limited does not extend its wait.
]]
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
  count = count + 1
  allowed = 1
end

local reset = 0
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
if oldest[2] then
  reset = tonumber(oldest[2]) + window - now
  if reset < 0 then reset = 0 end
end
local remaining = limit - count
if remaining < 0 then remaining = 0 end
return { allowed, remaining, reset, count }
