//! The Lua scripts the Redis backend runs: each is one atomic step, so replicas never
//! interleave a check and its update. They apply the same rules as gateway-core's
//! in-memory state (`Charge::refuses`, `CircuitState::admit` and `report`); the shared
//! test suite runs against both backends to keep them so.

/// Check every charge, then reserve on all of them, or on none.
///
/// KEYS: for each charge, its counter and its previous window's counter.
/// ARGV: for each charge, limit, amount, the previous window's weight (0: none), ttl ms.
/// Returns 0, or the 1-based index of the charge that refused.
pub(super) const RESERVE: &str = r"
local n = #KEYS / 2
for i = 1, n do
  local limit = tonumber(ARGV[4 * i - 3])
  local amount = tonumber(ARGV[4 * i - 2])
  local weight = tonumber(ARGV[4 * i - 1])
  local used = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if weight > 0 then
    used = used + math.ceil(tonumber(redis.call('GET', KEYS[2 * i]) or '0') * weight)
  end
  if used >= limit or (used > 0 and used + amount > limit) then
    return i
  end
end
for i = 1, n do
  redis.call('INCRBY', KEYS[2 * i - 1], ARGV[4 * i - 2])
  redis.call('PEXPIRE', KEYS[2 * i - 1], ARGV[4 * i])
end
return 0
";

/// Add each delta to its counter while the counter exists (a window that has gone needs
/// no correction). KEYS: the counters; ARGV: the deltas.
pub(super) const SETTLE: &str = r"
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], ARGV[i])
  end
end
return 0
";

/// Whether a target may be called: `{0}` closed, `{1, until}` open, `{2}` probe (claimed).
/// KEYS[1]: the circuit's hash; KEYS[2]: the hash of open circuits.
/// ARGV: target, now ms, probe claim ms.
pub(super) const ADMIT: &str = r"
local s = redis.call('HMGET', KEYS[1], 'open', 'probe')
local open = tonumber(s[1] or '0')
local probe = tonumber(s[2] or '0')
local now = tonumber(ARGV[2])
if open == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return {0}
end
if now < open or now < probe then
  return {1, math.max(open, probe)}
end
redis.call('HSET', KEYS[1], 'probe', now + tonumber(ARGV[3]))
return {2}
";

/// Count an outcome. Returns when the circuit's cool-down ends (0: closed).
/// KEYS[1]: the circuit's hash; KEYS[2]: the hash of open circuits.
/// ARGV: target, now ms, failed (0/1), cool-down ms, failure threshold (-1: none),
/// threshold percentage (-1: none), minimum requests, window ms.
pub(super) const REPORT: &str = r"
local target = ARGV[1]
local now = tonumber(ARGV[2])
local failed = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local threshold = tonumber(ARGV[5])
local pct = tonumber(ARGV[6])
local minimum = tonumber(ARGV[7])
local window = tonumber(ARGV[8])
local keep = cooldown * 3 + window * 2
local s = redis.call('HMGET', KEYS[1], 'win', 'req', 'fail', 'open')
local win = tonumber(s[1] or '0')
local req = tonumber(s[2] or '0')
local fail = tonumber(s[3] or '0')
local open = tonumber(s[4] or '0')
local function trip()
  local until_ms = now + cooldown
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'win', 0, 'req', 0, 'fail', 0, 'open', until_ms, 'probe', 0)
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('HSET', KEYS[2], target, until_ms)
  return until_ms
end
if open ~= 0 then
  if now < open then
    return open
  end
  if failed == 1 then
    return trip()
  end
  redis.call('DEL', KEYS[1])
  redis.call('HDEL', KEYS[2], target)
  return 0
end
if now - win >= window then
  win = now
  req = 0
  fail = 0
end
req = req + 1
fail = fail + failed
if failed == 1 and ((threshold >= 0 and fail >= threshold)
    or (pct >= 0 and req >= minimum and fail * 100 >= pct * req)) then
  return trip()
end
redis.call('HSET', KEYS[1], 'win', win, 'req', req, 'fail', fail)
redis.call('PEXPIRE', KEYS[1], keep)
return 0
";
