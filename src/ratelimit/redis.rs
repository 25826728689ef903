//! The Redis limiter: the decision of [`super::window::decide`] as one atomic Lua script.
//!
//! One sorted set per (policy, subject) holds the admission times in milliseconds of Redis's
//! own clock (`TIME`), so several instances with skewed clocks agree. The script trims the log,
//! counts every window, and records the request only when every window admits it — all in one
//! atomic step, so concurrent requests from any number of instances are counted exactly.
//! Invoked by SHA (`EVALSHA`); `redis::Script` reloads it on `NOSCRIPT` (e.g. after a restart
//! or `SCRIPT FLUSH`).

use std::time::Duration;

use redis::Script;

use super::policy::Window;
use super::window::{Decision, WindowState};
use crate::redis::RedisPool;

/// Deadline of one check; past it the request is admitted (fail open).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

// Integers are passed through string.format('%d') because Lua's default number formatting
// (%.14g) would round large values.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #ARGV / 2
local longest = 0
for i = 1, n do
  longest = math.max(longest, tonumber(ARGV[2 * i]))
end
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - longest))
local used = {}
local admitted = 1
for i = 1, n do
  local limit, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  used[i] = redis.call('ZCOUNT', key, string.format('%d', now - period + 1), '+inf')
  if used[i] >= limit then admitted = 0 end
end
if admitted == 1 then
  -- (time, size) is unique: within one millisecond the size only grows.
  local member = string.format('%d', now) .. ':' .. redis.call('ZCARD', key)
  redis.call('ZADD', key, string.format('%d', now), member)
  redis.call('PEXPIRE', key, string.format('%d', longest))
end
local out = {admitted}
for i = 1, n do
  local limit, period = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local count = used[i] + admitted
  local reset = 0
  if count > 0 then
    local rank = math.max(count - limit, 0)
    local e = redis.call('ZRANGEBYSCORE', key, string.format('%d', now - period + 1), '+inf',
      'WITHSCORES', 'LIMIT', rank, 1)
    if e[2] then reset = math.max(tonumber(e[2]) + period - now, 0) end
  end
  out[#out + 1] = math.max(limit - count, 0)
  out[#out + 1] = reset
end
return out
";

/// The script, loaded once per process (its SHA is computed locally).
pub struct RedisLimiter {
    script: Script,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLimiter")
    }
}

impl Default for RedisLimiter {
    fn default() -> Self {
        Self {
            script: Script::new(SCRIPT),
        }
    }
}

impl RedisLimiter {
    /// Runs the script for `key` (already prefixed) and `windows`.
    pub async fn check(
        &self,
        pool: &RedisPool,
        key: &str,
        windows: &[Window],
    ) -> Result<Decision, redis::RedisError> {
        let mut invocation = self.script.key(key);
        for w in windows {
            invocation.arg(w.limit).arg(millis(w.period));
        }
        // The deadline covers connecting too, and while Redis is down the pool fails at once:
        // a down Redis must not hold requests.
        let out = pool
            .run(CHECK_TIMEOUT, |mut conn| async move {
                invocation.invoke_async::<Vec<i64>>(&mut conn).await
            })
            .await?;
        parse(&out, windows.len()).ok_or_else(|| {
            redis::RedisError::from((redis::ErrorKind::TypeError, "unexpected script reply"))
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn parse(out: &[i64], windows: usize) -> Option<Decision> {
    if out.len() != 1 + 2 * windows {
        return None;
    }
    let to_u64 = |v: i64| u64::try_from(v.max(0)).unwrap_or(0);
    Some(Decision {
        admitted: out[0] == 1,
        windows: out[1..]
            .chunks(2)
            .map(|c| WindowState {
                remaining: to_u64(c[0]),
                reset: Duration::from_millis(to_u64(c[1])),
            })
            .collect(),
    })
}
