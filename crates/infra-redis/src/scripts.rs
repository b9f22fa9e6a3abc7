//! The Lua scripts: each change of live state is one script, so it is atomic and
//! costs one round trip. Numbers go back as strings where Lua would truncate them.

use redis::Script;
use std::sync::LazyLock;

/// Appends at an offset. KEYS: text, end. ARGV: at, text, ttl ms, channel.
/// Returns `{status, len}`: 1 appended (or already held), 0 finished (unchanged),
/// -1 gap (`at` past the end).
pub static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local len = redis.call('STRLEN', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, len} end
local at = tonumber(ARGV[1])
if at > len then return {-1, len} end
local text = ARGV[2]
local skip = len - at
if skip < #text then
  local add = string.sub(text, skip + 1)
  len = redis.call('APPEND', KEYS[1], add)
  redis.call('PUBLISH', ARGV[4], 'd' .. (len - #add) .. ':' .. add)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, len}
",
    )
});

/// Reads from an offset. KEYS: text, end. ARGV: from.
/// Returns `{exists, len, text, end}` (`end` is `''` while generating).
pub static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local len = redis.call('STRLEN', KEYS[1])
local e = redis.call('GET', KEYS[2])
local exists = redis.call('EXISTS', KEYS[1]) + (e and 1 or 0)
local from = tonumber(ARGV[1])
local text = ''
if from < len then text = redis.call('GETRANGE', KEYS[1], from, -1) end
return {exists, len, text, e or ''}
",
    )
});

/// Records the end. KEYS: text, end, lease, leases (sorted set), cancel.
/// ARGV: end, retention ms, channel, reply id.
pub static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
local e = redis.call('GET', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[4])
redis.call('PUBLISH', ARGV[3], 'e' .. e)
return e
",
    )
});

/// Takes a lease. KEYS: lease, leases. ARGV: holder, now µs, until µs, reply id, keep ms.
/// Returns 1 taken, 0 held by another holder.
pub static TAKE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur = redis.call('HMGET', KEYS[1], 'holder', 'until')
if cur[1] and cur[1] ~= ARGV[1] and tonumber(cur[2]) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'until', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
",
    )
});

/// Renews a lease. KEYS: lease, leases. ARGV: holder, until µs, reply id, keep ms.
/// Returns 1 renewed, 0 not held by `holder`.
pub static RENEW_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
",
    )
});

/// Releases a lease. KEYS: lease, leases. ARGV: holder, reply id.
pub static RELEASE_LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
",
    )
});

/// GCRA: takes `n` tokens at once or none. KEYS: bucket. ARGV: now µs, µs per token,
/// burst, n. Returns `{1, '0'}` allowed or `{0, wait µs}`. The key expires a second
/// after the bucket is full again.
pub static TAKE_TOKENS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local new_tat = tat + n * t
local allow_at = new_tat - burst * t
if allow_at > now then return {0, string.format('%.3f', allow_at - now)} end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, '0'}
",
    )
});
