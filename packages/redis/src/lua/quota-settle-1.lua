--[[
  Settles a reservation to the real usage once a job has ended (completed, failed, cancelled).

  KEYS[1]  the same counter the reservation went to
  ARGV[1]  delta: real usage minus the reservation (usually negative: a refund)

  Returns the counter after the call. A counter that expired meanwhile (a new day) is left
  alone: yesterday's reservation must not be refunded against today's usage.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local used = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
if used < 0 then
  redis.call('SET', KEYS[1], 0, 'KEEPTTL')
  used = 0
end
return used
