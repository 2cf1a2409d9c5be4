//! The spend ledger: one row per finished request, packed a batch to a `spend_logs` row
//! ([`pack`]), daily rollups of them (`spend_daily`), and the persisted counters of rate-limit
//! and budget windows (`limit_usage`).
//!
//! The control thread appends finished requests in batches ([`Store::append_ledger`]); a batch
//! is one transaction that stores the packed rows, adds them into their days' rollups and adds
//! their cost to the spend of the keys and teams they name, so the three never disagree. Raw
//! rows are pruned by whole UTC days ([`Store::prune_ledger`]); rollups stay, and reports and
//! budget sums read only them, never the raw rows.
//!
//! Invariants: a rollup is the sum of the raw rows appended into it; rollup key columns hold ''
//! for "none", never NULL; a cost of `None` (unknown price) adds nothing to any spend and
//! counts as `unpriced`.

use std::collections::HashMap;

use super::sql::args;
use super::{Db, Fault, Reader, Store, StoreError, Writer};

pub use pack::unpack;
pub use query::{LedgerFilter, SpendGroup};

const DAY_MS: i64 = 86_400_000;

/// The UTC day number of unix milliseconds (days since 1970-01-01).
pub fn day_of(ts_ms: i64) -> i64 {
    ts_ms.div_euclid(DAY_MS)
}

/// One finished request, as the ledger keeps it: owned as listings return it, or borrowing
/// its names (`LedgerRow<&str>`) as the control thread appends it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LedgerRow<S = String> {
    pub request_id: S,
    /// When the request started, unix ms.
    pub ts_ms: i64,
    /// `None`: an anonymous request.
    pub key_id: Option<S>,
    pub team_id: Option<S>,
    pub end_user: Option<S>,
    /// The model alias the client asked for.
    pub alias: Option<S>,
    pub target: Option<S>,
    pub provider: Option<S>,
    pub upstream_model: Option<S>,
    /// Every prompt token, cached ones included.
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    /// `None`: the price is unknown. A non-finite cost is kept as `None`.
    pub cost_usd: Option<f64>,
    pub status: u16,
    /// A non-finite latency is kept as 0.
    pub latency_ms: f64,
    /// The usage was estimated (a stream cut before the provider reported it).
    pub estimated: bool,
}

/// Whose spend [`Store::spend_since_day`] sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendScope<'a> {
    Key(&'a str),
    Team(&'a str),
    User(&'a str),
}

/// One group of a spend report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpendTotal {
    /// The key id, team id, alias, provider or end user (`None`: requests without one), or the
    /// UTC date `YYYY-MM-DD`.
    pub group: Option<String>,
    pub requests: u64,
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
    /// Of the priced requests only.
    pub cost_usd: f64,
    /// Requests whose price is unknown.
    pub unpriced: u64,
    /// Requests answered with a status of 400 or more.
    pub errors: u64,
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn cost<S>(row: &LedgerRow<S>) -> Option<f64> {
    row.cost_usd.filter(|c| c.is_finite())
}

/// A rollup's key: (day, key, team, end user, alias, provider), '' for none.
type DailyKey<'r> = (i64, Name<'r>, Name<'r>, Name<'r>, Name<'r>, Name<'r>);

/// A hash map of a batch's sums (a fast hash: the keys are the gateway's own names).
type Sums<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A name in a batch's sums. The control thread's rows borrow their names from one registry,
/// so equal names are mostly the same bytes: equality looks at the address first.
#[derive(Debug, Clone, Copy, Hash)]
struct Name<'r>(&'r str);

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}

impl Eq for Name<'_> {}

/// A rollup key column: '' for none.
fn none<S: AsRef<str>>(v: &Option<S>) -> Name<'_> {
    Name(v.as_ref().map_or("", AsRef::as_ref))
}

/// What a batch adds to one rollup.
fn add<S>(sum: &mut SpendTotal, row: &LedgerRow<S>) {
    sum.requests += 1;
    sum.input = sum.input.saturating_add(row.input);
    sum.output = sum.output.saturating_add(row.output);
    sum.cache_read = sum.cache_read.saturating_add(row.cache_read);
    sum.cache_write = sum.cache_write.saturating_add(row.cache_write);
    sum.reasoning = sum.reasoning.saturating_add(row.reasoning);
    match cost(row) {
        Some(c) => sum.cost_usd += c,
        None => sum.unpriced += 1,
    }
    sum.errors += u64::from(row.status >= 400);
}

// === impl Store ===

impl Store {
    /// Inserts the rows, adds them into their rollups, and adds their cost to the spend of the
    /// keys and teams they name (ids not in those tables are ignored). One transaction. On
    /// PostgreSQL while it is away, the batch goes to the spool instead (`pg::spool`), under
    /// the origin it was first tried with, so it is stored once even if that try committed.
    pub fn append_ledger<S: AsRef<str>>(
        &mut self,
        rows: &[LedgerRow<S>],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let Db::Pg(pg) = &mut self.db else {
            return self.transact(false, |w| w.append_batch(rows, None));
        };
        let origin = pg.next_origin();
        match self.transact(false, |w| w.append_batch(rows, Some(&origin))) {
            Err(e) if e.fault == Fault::Unavailable => {
                let Db::Pg(pg) = &mut self.db else {
                    unreachable!()
                };
                let mut data = Vec::with_capacity(rows.len() * 96);
                pack::pack(rows, &mut data);
                pg.spool.push(&origin, rows.len() as u32, &data)
            }
            done => done,
        }
    }

    /// Deletes the raw rows of whole UTC days before the last `keep_days` (today is always
    /// kept: `keep_days` 0 deletes everything before today); rollups stay. Returns rows deleted.
    pub fn prune_ledger(&mut self, keep_days: u32, now_ms: i64) -> Result<u64, StoreError> {
        let cutoff = day_of(now_ms) - i64::from(keep_days);
        // Whole batches go once the last day they hold is past: a batch spanning midnight
        // stays a day longer, so no kept day ever loses a row.
        self.transact(false, |w| {
            let n: i64 = w.conn.value(
                "SELECT CAST(coalesce(sum(rows), 0) AS BIGINT) FROM spend_logs \
                 WHERE last_day < ?1",
                args![cutoff],
            )?;
            w.conn
                .execute("DELETE FROM spend_logs WHERE last_day < ?1", args![cutoff])?;
            Ok(count(n))
        })
    }

    /// Spend (USD, priced requests only) of a key, team or end user from UTC day `since_day`
    /// (inclusive) on, from the rollups.
    pub fn spend_since_day(
        &self,
        scope: SpendScope<'_>,
        since_day: i64,
    ) -> Result<f64, StoreError> {
        self.reader().spend_since_day(scope, since_day)
    }

    /// Every end user's spend (USD, priced requests) from UTC day `since_day` on.
    pub fn spend_by_user_since_day(
        &self,
        since_day: i64,
    ) -> Result<Vec<(String, f64)>, StoreError> {
        self.reader().conn.query(
            "SELECT end_user, sum(cost) FROM spend_daily WHERE end_user != '' AND day >= ?1 \
             GROUP BY end_user HAVING sum(cost) > 0",
            args![since_day],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Sets `used` of each (scope, window start in unix ms).
    pub fn save_limit_usage(&mut self, rows: &[(String, i64, f64)]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.transact(false, |w| {
            for (scope, start, used) in rows {
                w.conn.execute(
                    "INSERT INTO limit_usage (scope, window_start, used) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (scope, window_start) DO UPDATE SET used = excluded.used",
                    args![scope, start, used],
                )?;
            }
            Ok(())
        })
    }

    /// The windows that start at or after `since_ms`, by scope and start.
    pub fn load_limit_usage(&self, since_ms: i64) -> Result<Vec<(String, i64, f64)>, StoreError> {
        self.reader().conn.query(
            "SELECT scope, window_start, used FROM limit_usage WHERE window_start >= ?1 \
             ORDER BY scope, window_start",
            args![since_ms],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Deletes the windows that start before `before_ms`; returns how many.
    pub fn prune_limit_usage(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        self.transact(false, |w| {
            w.conn.execute(
                "DELETE FROM limit_usage WHERE window_start < ?1",
                args![before_ms],
            )
        })
    }

    /// Raw rows kept.
    pub fn ledger_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.reader().conn.value(
            "SELECT CAST(coalesce(sum(rows), 0) AS BIGINT) FROM spend_logs",
            args![],
        )?;
        Ok(count(n))
    }
}

// === impl Reader ===

impl Reader<'_> {
    pub fn spend_since_day(
        &self,
        scope: SpendScope<'_>,
        since_day: i64,
    ) -> Result<f64, StoreError> {
        let (sql, id) = match scope {
            SpendScope::Key(id) => ("key_id", id),
            SpendScope::Team(id) => ("team_id", id),
            SpendScope::User(id) => ("end_user", id),
        };
        // '' is the rollups' "none": nobody's spend.
        if id.is_empty() {
            return Ok(0.0);
        }
        let sql = format!(
            "SELECT CAST(coalesce(sum(cost), 0) AS DOUBLE PRECISION) FROM spend_daily \
             WHERE {sql} = ?1 AND day >= ?2"
        );
        self.conn.value(&sql, args![id, since_day])
    }
}

// === impl Writer ===

impl Writer<'_> {
    /// [`Store::append_ledger`] inside a transaction of the caller's.
    pub fn append_ledger<S: AsRef<str>>(&self, rows: &[LedgerRow<S>]) -> Result<(), StoreError> {
        self.append_batch(rows, None)
    }

    /// A spooled batch, unless its origin is stored already (its first try committed).
    pub(super) fn append_spooled(
        &self,
        rows: &[LedgerRow],
        origin: &str,
    ) -> Result<(), StoreError> {
        let stored: Option<i64> = self.conn.query_opt(
            "SELECT batch FROM spend_logs WHERE origin = ?1",
            args![origin],
            |r| r.get(0),
        )?;
        match stored {
            Some(_) => Ok(()),
            None => self.append_batch(rows, Some(origin)),
        }
    }

    /// Stores one batch: its packed rows (named `origin`, if given: stored at most once),
    /// their rollups and spend.
    fn append_batch<S: AsRef<str>>(
        &self,
        rows: &[LedgerRow<S>],
        origin: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut data = Vec::with_capacity(rows.len() * 96);
        pack::pack(rows, &mut data);
        let (first, last) = rows.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
            (lo.min(r.ts_ms), hi.max(r.ts_ms))
        });
        self.conn.execute(
            "INSERT INTO spend_logs (first_day, last_day, first_ts, last_ts, rows, data, origin) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                day_of(first),
                day_of(last),
                first,
                last,
                rows.len() as i64,
                data,
                origin
            ],
        )?;
        let mut daily: Sums<DailyKey, SpendTotal> = Sums::default();
        let mut keys: Sums<Name, f64> = Sums::default();
        let mut teams: Sums<Name, f64> = Sums::default();
        for row in rows {
            let at = (
                day_of(row.ts_ms),
                none(&row.key_id),
                none(&row.team_id),
                none(&row.end_user),
                none(&row.alias),
                none(&row.provider),
            );
            add(daily.entry(at).or_default(), row);
            if let Some(c) = cost(row) {
                if let Some(k) = &row.key_id {
                    *keys.entry(Name(k.as_ref())).or_default() += c;
                }
                if let Some(t) = &row.team_id {
                    *teams.entry(Name(t.as_ref())).or_default() += c;
                }
            }
        }
        self.add_daily(&daily)?;
        for (id, c) in keys {
            self.conn.execute(
                "UPDATE keys SET spend = spend + ?2 WHERE key_id = ?1",
                args![id.0, c],
            )?;
        }
        for (id, c) in teams {
            self.conn.execute(
                "UPDATE teams SET spend = spend + ?2 WHERE team_id = ?1",
                args![id.0, c],
            )?;
        }
        Ok(())
    }

    fn add_daily(&self, daily: &Sums<DailyKey, SpendTotal>) -> Result<(), StoreError> {
        for (&(day, key, team, user, alias, provider), s) in daily {
            self.conn.execute(
                "INSERT INTO spend_daily (day, key_id, team_id, end_user, alias, provider, \
                 requests, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, \
                 reasoning_tokens, cost, unpriced, errors) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 ON CONFLICT (day, key_id, team_id, end_user, alias, provider) DO UPDATE SET \
                 requests = spend_daily.requests + excluded.requests, \
                 input_tokens = spend_daily.input_tokens + excluded.input_tokens, \
                 output_tokens = spend_daily.output_tokens + excluded.output_tokens, \
                 cache_read_tokens = spend_daily.cache_read_tokens + excluded.cache_read_tokens, \
                 cache_write_tokens = spend_daily.cache_write_tokens + excluded.cache_write_tokens, \
                 reasoning_tokens = spend_daily.reasoning_tokens + excluded.reasoning_tokens, \
                 cost = spend_daily.cost + excluded.cost, \
                 unpriced = spend_daily.unpriced + excluded.unpriced, \
                 errors = spend_daily.errors + excluded.errors",
                args![
                    day,
                    key.0,
                    team.0,
                    user.0,
                    alias.0,
                    provider.0,
                    int(s.requests),
                    int(s.input),
                    int(s.output),
                    int(s.cache_read),
                    int(s.cache_write),
                    int(s.reasoning),
                    s.cost_usd,
                    int(s.unpriced),
                    int(s.errors),
                ],
            )?;
        }
        Ok(())
    }
}

mod pack;
mod query;
#[cfg(test)]
mod tests;
