--[[
  Counts one ended job in its user's usage ledger, once: the job's marker is set (SET NX) and only
  if it was not there already are the counters added to, in the same atomic step. A retry of a
  call whose reply was lost, a stalled job's re-run, anything that ends the same job again, finds
  the marker and changes nothing (issue 24 §3).

  KEYS[1]  the ledger: the user's hash for one UTC day (keys.usage)
  KEYS[2]  the job's marker (keys.usageCounted), in the same slot ({<user>})
  ARGV[1]  the field: `<key>|<model>|<outcome>` (usage.ts)
  ARGV[2]  prompt tokens
  ARGV[3]  completion tokens
  ARGV[4]  when the ledger expires: unix seconds (its day's end + USAGE_RETENTION_DAYS)
  ARGV[5]  how long the marker lives, seconds

  The field's value is `<prompt tokens> <completion tokens> <jobs>`: one field per key × model ×
  outcome, not three, keeps a key-day at a few hundred bytes (docs/operations.md). Exact up to
  2^53 (Lua's numbers).

  Returns 1 when the job was counted now, 0 when it had been counted before.
]]
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[5]) then
  return 0
end
local prompt, completion, jobs = 0, 0, 0
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  local p, c, n = string.match(old, '^(%d+) (%d+) (%d+)$')
  if p then
    prompt, completion, jobs = tonumber(p), tonumber(c), tonumber(n)
  end
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%d %d %d',
  prompt + tonumber(ARGV[2]), completion + tonumber(ARGV[3]), jobs + 1))
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return 1
