package redislimit

import "github.com/redis/go-redis/v9"

// The scripts run on Redis's clock (TIME, in microseconds), so that the
// replicas' clocks need not agree.

// rateScript takes one event from a sliding log of its key's event times,
// and may lease more. KEYS[1] the log, KEYS[2] the epoch (see
// quotaPrologue); ARGV n, per (us), a unique member base, the most slots
// wanted, the lease's life (us), the grace (ms), then the members of an
// ended lease that were not used, to give back. It answers {wait, granted,
// now, epoch}, now in us: {0, granted} when admitted (granted >= 1: this
// event and granted-1 leased slots), {wait in us, 0} when refused, and
// {-(grace left in us), 0} while a Redis new from a restart waits for the
// replicas to tell it the windows it lost (Limiter.replay).
//
// Leased slots are logged at the lease's end, not at its start: a slot is
// used at or before its logged time, so every event a check could miss is
// still in the log, and no window ever holds more than n. Slots are leased
// only with room to spare (a sixteenth of what is left, at most), so near
// the limit every event is one exact check. Scores go out as integer
// strings: Lua would print a number in us with 14 significant digits.
var rateScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ms = math.floor(now / 1000)
local epoch = tonumber(redis.call('GET', KEYS[2]))
if not epoch then
  epoch = ms
  redis.call('SET', KEYS[2], ms)
end
local grace = tonumber(ARGV[6])
if ms < epoch + grace then return {-(epoch + grace - ms) * 1000, 0, now, epoch} end
local n, per, base = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local want, life = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - per))
if #ARGV > 6 then redis.call('ZREM', KEYS[1], unpack(ARGV, 7)) end
local c = redis.call('ZCARD', KEYS[1])
if c < n then
  local g = math.max(1, math.min(want, math.floor((n - c) / 16)))
  local args = {string.format('%.0f', now), base .. ':0'}
  local later = string.format('%.0f', now + life)
  for i = 1, g - 1 do
    args[#args + 1] = later
    args[#args + 1] = base .. ':' .. i
  end
  redis.call('ZADD', KEYS[1], unpack(args))
  redis.call('PEXPIRE', KEYS[1], math.ceil((per + life) / 1000))
  return {0, g, now, epoch}
end
local first = redis.call('ZRANGE', KEYS[1], c - n, c - n, 'WITHSCORES')
return {math.max(1, math.ceil(tonumber(first[2]) + per - now)), 0, now, epoch}
`)

// epochScript answers the epoch of KEYS[1], beginning one when Redis has
// none, as the other scripts do.
var epochScript = redis.NewScript(`
local e = tonumber(redis.call('GET', KEYS[1]))
if e then return e end
local t = redis.call('TIME')
e = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], e)
return e
`)

// quotaPrologue is shared by the quota scripts. KEYS[1] is the account's
// counter (a hash: state "r" while rebuilding or "ok", spent, delta: what
// was charged while rebuilding, sum and n: points charged and work ended
// since the counter was made, for the mean cost, counted together by the
// ends; exp: when the built counter is to be rebuilt), KEYS[2] the work it holds
// (a hash: hold id -> expiry, or minus the expiry of the tombstone of a
// hold that ended: a renewal that read the hold before its end may reach
// Redis after it, and must not bring it back; a lease bounds how late it
// can be, or what a phantom could cost), KEYS[3] the epoch: when this Redis began
// holding chatgate's counters. ARGV[1..3]: lease (ms), grace (ms), the
// counter's TTL (s).
//
// A counter past its TTL is rebuilt from the source, but it is not
// deleted: it keeps sum and n, so that the work running through the
// rebuild still counts at the mean, rather than at an unknown cost that
// would keep every new piece of work waiting for one to end. The key
// itself lives two TTLs from its last rebuild, so that an account no
// longer used is forgotten.
const quotaPrologue = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local K, H, E = KEYS[1], KEYS[2], KEYS[3]
local lease, grace, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local epoch = tonumber(redis.call('GET', E))
if not epoch then
  epoch = now
  redis.call('SET', E, now)
end
local function ensure()
  local st = redis.call('HGET', K, 'state')
  if not st then
    redis.call('HSET', K, 'state', 'r', 'delta', 0, 'sum', 0, 'n', 0)
    redis.call('EXPIRE', K, ttl * 2)
    st = 'r'
  elseif st == 'ok' and now >= (tonumber(redis.call('HGET', K, 'exp')) or 0) then
    redis.call('HSET', K, 'state', 'r', 'delta', 0)
    redis.call('HDEL', K, 'rb', 'r0')
    st = 'r'
  end
  return st
end
local function running()
  local all = redis.call('HGETALL', H)
  local c = 0
  for i = 1, #all, 2 do
    local v = tonumber(all[i + 1])
    if v < 0 then
      if -v <= now then redis.call('HDEL', H, all[i]) end
    elseif v <= now then
      redis.call('HDEL', H, all[i])
    else
      c = c + 1
    end
  end
  return c
end
local function hold(id)
  redis.call('HSET', H, id, now + lease)
  redis.call('PEXPIRE', H, math.ceil(lease * 2))
end
local function ended(id)
  local v = tonumber(redis.call('HGET', H, id))
  return v ~= nil and v < 0
end
local function bury(id)
  redis.call('HSET', H, id, -(now + lease))
  if redis.call('PTTL', H) < lease then redis.call('PEXPIRE', H, lease) end
end
`

// reserveScript admits work: ARGV[4] the budget, ARGV[5] the hold's id. It
// answers {"ok", epoch}, {"spent"}, {"rebuild"} (read the source, then finish),
// or {"wait", ms}: the cost is unknown and work runs, or this Redis is
// new and the replicas have not yet told it of the work they hold.
var reserveScript = redis.NewScript(quotaPrologue + `
if ensure() == 'r' then return {'rebuild'} end
if now < epoch + grace then return {'wait', epoch + grace - now} end
local c = running()
local n = tonumber(redis.call('HGET', K, 'n'))
if n == 0 and c > 0 then return {'wait', 0} end
local mean = 0
if n > 0 then mean = tonumber(redis.call('HGET', K, 'sum')) / n end
if tonumber(redis.call('HGET', K, 'spent')) + c * mean >= tonumber(ARGV[4]) then return {'spent'} end
if ended(ARGV[5]) then return {'spent'} end -- dropped: no one waits for the answer
hold(ARGV[5])
return {'ok', epoch}
`)

// rebuildScript begins a rebuild, or takes over one whose lease ran out:
// the answer is the rebuild's token (> 0), 0 when the counter is built, or
// minus the ms to wait while another caller's rebuild runs. One rebuild
// runs at a time, under a lease of ARGV[4] ms: were every caller to start
// afresh, a crowd of callers would keep restarting it and none would
// finish. Past the lease one of them takes it over (its owner may have
// died between reading the source and finishing), but delta still counts
// from the first start, r0, so that any of their finishes is right: were
// the late ones refused, a source slower than the lease would never be
// read in time by anyone. The source must be read after this.
var rebuildScript = redis.NewScript(quotaPrologue + `
if ensure() ~= 'r' then return 0 end
local rb = tonumber(redis.call('HGET', K, 'rb'))
local rl = tonumber(ARGV[4])
if rb and now < rb + rl then return -math.max(1, rb + rl - now) end
if redis.call('HEXISTS', K, 'r0') == 0 then
  redis.call('HSET', K, 'delta', 0, 'r0', now)
end
redis.call('HSET', K, 'rb', now)
return now
`)

// rebuiltScript finishes the rebuild of token ARGV[5] with ARGV[4], the
// source's spent points read after it began: what was charged since the
// first start is in delta. Only charges made between that start and the
// source's read are counted twice, which errs on the side of the budget.
// A token older than the first start is of a rebuild before it (the
// counter was lost or expired since) and changes nothing (answer 0).
var rebuiltScript = redis.NewScript(quotaPrologue + `
if redis.call('HGET', K, 'state') ~= 'r' then return 1 end
local r0 = tonumber(redis.call('HGET', K, 'r0'))
if not r0 or tonumber(ARGV[5]) < r0 then return 0 end
redis.call('HSET', K, 'state', 'ok', 'spent', 0)
redis.call('HINCRBYFLOAT', K, 'spent', ARGV[4])
redis.call('HINCRBYFLOAT', K, 'spent', redis.call('HGET', K, 'delta'))
redis.call('HDEL', K, 'rb', 'r0')
redis.call('HSET', K, 'exp', now + ttl * 1000)
redis.call('EXPIRE', K, ttl * 2)
return 1
`)

// abandonScript gives up the rebuild of token ARGV[4], whose source read
// failed, unless another caller has taken it over since. Delta still
// counts from the first start, for whoever rebuilds next.
var abandonScript = redis.NewScript(quotaPrologue + `
if redis.call('HGET', K, 'state') == 'r' and tonumber(redis.call('HGET', K, 'rb')) == tonumber(ARGV[4]) then
  redis.call('HDEL', K, 'rb')
end
return 1
`)

// chargeScript adds ARGV[4] points, and ARGV[5] of them to the mean's sum
// (the rest goes with the end of this process's work; see cost). A
// counter Redis does not have is left to be rebuilt from the source, which
// has the points already.
var chargeScript = redis.NewScript(quotaPrologue + `
local st = redis.call('HGET', K, 'state')
if not st then return 0 end
if st == 'r' then
  redis.call('HINCRBYFLOAT', K, 'delta', ARGV[4])
else
  redis.call('HINCRBYFLOAT', K, 'spent', ARGV[4])
end
if ARGV[5] ~= '0' then redis.call('HINCRBYFLOAT', K, 'sum', ARGV[5]) end
return 1
`)

// endScript ends the holds ARGV[6..]: pieces of work whose cost is known,
// and ARGV[5], the points charged with them, in one step, made into a
// counter (to be rebuilt) if Redis lost it, so that the mean counts them
// together or not at all. The first end of a counter is published on
// channel ARGV[4], to wake the work that waits for a cost to be known.
var endScript = redis.NewScript(quotaPrologue + `
for i = 6, #ARGV do bury(ARGV[i]) end
ensure()
redis.call('HINCRBYFLOAT', K, 'sum', ARGV[5])
local ended = #ARGV - 5
if redis.call('HINCRBY', K, 'n', ended) == ended then
  redis.call('PUBLISH', ARGV[4], K)
end
return 1
`)

// dropScript ends the hold ARGV[4] of a Reserve whose answer was lost, or
// forbids it if the Reserve has not reached Redis yet. The work never ran:
// it counts in no mean.
var dropScript = redis.NewScript(quotaPrologue + `
bury(ARGV[4])
return 1
`)

// renewScript extends the holds ARGV[5..] (ARGV[4] is the epoch they were
// last renewed under, which no longer matters): every one that has not
// ended is held again, whether Redis lost it with its data (another epoch)
// or let it lapse (a replica cut off for longer than the lease): its work
// still runs. A lost counter begins its rebuild. It answers the epoch.
var renewScript = redis.NewScript(quotaPrologue + `
ensure()
for i = 5, #ARGV do
  if not ended(ARGV[i]) then hold(ARGV[i]) end
end
return epoch
`)

// spentScript answers {"ok", spent} or {"rebuild"}.
var spentScript = redis.NewScript(quotaPrologue + `
if ensure() == 'r' then return {'rebuild'} end
return {'ok', redis.call('HGET', K, 'spent')}
`)
