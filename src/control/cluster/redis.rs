//! The control thread's one connection to Redis and the script that grants shares of the
//! shared pools. Nothing else in the process talks to Redis.
//!
//! A pool is one hash per slot and window (`<prefix><slot>:<window>`): for each replica `r`
//! what it holds (`h:r`) and what its shards have taken of that (`u:r`). A call sets this
//! replica's holding, atomically, to `max(min(want, capacity − others), floor)`, where `floor`
//! is what its shards already took (never given back) and `others` what the live replicas
//! hold. A replica whose heartbeat key (`<prefix>alive:<r>`) has expired is gone: what it held
//! beyond what it used is freed (a concurrency gauge frees all). Windowed pools expire a minute
//! after their window ends; concurrency gauges and lifetime budgets never expire.

use std::time::Duration;

/// How long a connection attempt and each reply may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IO_TIMEOUT: Duration = Duration::from_millis(500);
/// A replica silent this long is gone.
pub const ALIVE_MS: u64 = 5_000;

const GRANT: &str = r#"
local key, me, want, floor, cap = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, gauge, alive = tonumber(ARGV[5]), ARGV[6] == '1', ARGV[7]
local all = redis.call('HGETALL', key)
local held, used = {}, {}
for i = 1, #all, 2 do
  local f, v = all[i], tonumber(all[i + 1])
  local r = string.sub(f, 3)
  if r ~= me then
    if string.sub(f, 1, 1) == 'h' then held[r] = v else used[r] = v end
  end
end
local others, others_used = 0, 0
for r, h in pairs(held) do
  if redis.call('EXISTS', alive .. r) == 0 then
    local keep = 0
    if not gauge then keep = math.min(h, used[r] or h) end
    if keep == 0 then
      redis.call('HDEL', key, 'h:' .. r, 'u:' .. r)
    else
      redis.call('HSET', key, 'h:' .. r, keep)
    end
    h = keep
  end
  others = others + h
  others_used = others_used + math.min(h, used[r] or 0)
end
local give = math.min(want, math.max(cap - others, 0))
if give < floor then give = floor end
redis.call('HSET', key, 'h:' .. me, give, 'u:' .. me, floor)
if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
return {give, others, others_used}
"#;

/// One share to set: the pool's key and the call's arguments.
#[derive(Debug, Clone)]
pub struct Ask {
    pub key: String,
    pub want: u64,
    pub floor: u64,
    pub cap: u64,
    /// Milliseconds the pool lives from now (0: for ever).
    pub ttl_ms: u64,
    pub gauge: bool,
}

pub struct Redis {
    conn: redis::Connection,
    sha: String,
}

impl Redis {
    pub fn connect(url: &str) -> redis::RedisResult<Redis> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        conn.set_read_timeout(Some(IO_TIMEOUT))?;
        conn.set_write_timeout(Some(IO_TIMEOUT))?;
        let sha = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(GRANT)
            .query::<String>(&mut conn)?;
        Ok(Redis { conn, sha })
    }

    /// Stamps this replica in the census set and counts the replicas stamped in the last
    /// `ALIVE_MS`.
    pub fn census(&mut self, prefix: &str, me: &str, now_ms: i64) -> redis::RedisResult<u64> {
        let key = format!("{prefix}replicas");
        let (n,): (u64,) = redis::pipe()
            .cmd("ZADD")
            .arg(&key)
            .arg(now_ms)
            .arg(me)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_ms - ALIVE_MS as i64)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(2 * ALIVE_MS)
            .ignore()
            .cmd("ZCARD")
            .arg(&key)
            .query(&mut self.conn)?;
        Ok(n)
    }

    /// Renews this replica's heartbeat and sets every share in `asks`, in one round trip;
    /// returns for each (held, what the others hold, what their shards took of that).
    pub fn grant(
        &mut self,
        prefix: &str,
        me: &str,
        asks: &[Ask],
    ) -> redis::RedisResult<Vec<(u64, u64, u64)>> {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(format!("{prefix}alive:{me}"))
            .arg(1)
            .arg("PX")
            .arg(ALIVE_MS)
            .ignore();
        let alive = format!("{prefix}alive:");
        for a in asks {
            pipe.cmd("EVALSHA")
                .arg(&self.sha)
                .arg(1)
                .arg(&a.key)
                .arg(me)
                .arg(a.want)
                .arg(a.floor)
                .arg(a.cap)
                .arg(a.ttl_ms)
                .arg(if a.gauge { 1 } else { 0 })
                .arg(&alive);
        }
        if asks.is_empty() {
            pipe.query::<()>(&mut self.conn)?;
            return Ok(Vec::new());
        }
        pipe.query(&mut self.conn)
    }
}
