//! The ledger's reads for the admin API: a page of raw rows by filter, newest first, and the
//! rollups of a day range summed by a group. Reports read the rollups only.

use rusqlite::types::Value as Sql;
use rusqlite::{Row, params_from_iter};

use super::{DAY_MS, LOG_COLUMNS, LedgerRow, Reader, SpendTotal, StoreError, count, day_of, int};
use crate::observe::time::iso8601;

/// Which raw rows a listing shows; `None` = any.
#[derive(Debug, Clone, Copy, Default)]
pub struct LedgerFilter<'a> {
    pub key_id: Option<&'a str>,
    pub team_id: Option<&'a str>,
    pub end_user: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// Unix ms, inclusive.
    pub since_ms: Option<i64>,
    /// Unix ms, exclusive.
    pub until_ms: Option<i64>,
}

/// What a spend report groups the rollups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendGroup {
    Key,
    Team,
    /// The model alias.
    Model,
    Provider,
    Day,
    User,
}

impl SpendGroup {
    fn column(self) -> &'static str {
        match self {
            SpendGroup::Key => "key_id",
            SpendGroup::Team => "team_id",
            SpendGroup::Model => "alias",
            SpendGroup::Provider => "provider",
            SpendGroup::Day => "day",
            SpendGroup::User => "end_user",
        }
    }
}

/// A UTC day number as `YYYY-MM-DD`.
fn date(day: i64) -> String {
    iso8601(day * DAY_MS)[..10].to_owned()
}

fn ledger_row(r: &Row) -> rusqlite::Result<LedgerRow> {
    Ok(LedgerRow {
        request_id: r.get(0)?,
        ts_ms: r.get(1)?,
        key_id: r.get(2)?,
        team_id: r.get(3)?,
        end_user: r.get(4)?,
        alias: r.get(5)?,
        target: r.get(6)?,
        provider: r.get(7)?,
        upstream_model: r.get(8)?,
        input: count(r.get(9)?),
        output: count(r.get(10)?),
        cache_read: count(r.get(11)?),
        cache_write: count(r.get(12)?),
        reasoning: count(r.get(13)?),
        cost_usd: r.get(14)?,
        status: u16::try_from(r.get::<_, i64>(15)?).unwrap_or(u16::MAX),
        latency_ms: r.get(16)?,
        estimated: r.get(17)?,
    })
}

// === impl Reader ===

impl Reader<'_> {
    /// One page of raw rows, newest first.
    pub fn ledger_rows(
        &self,
        filter: &LedgerFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        let mut clauses = Vec::new();
        let mut args = Vec::new();
        let mut cond = |clause: &str, arg: Sql| {
            args.push(arg);
            clauses.push(format!("{clause} ?{}", args.len()));
        };
        let text = |s: &str| Sql::Text(s.to_owned());
        let equal = [
            ("key_id =", filter.key_id),
            ("team_id =", filter.team_id),
            ("end_user =", filter.end_user),
            ("request_id =", filter.request_id),
        ];
        for (clause, value) in equal {
            if let Some(v) = value {
                cond(clause, text(v));
            }
        }
        // The day bounds repeat the time bounds so a listing by date alone reads the day index.
        if let Some(since) = filter.since_ms {
            cond("ts >=", Sql::Integer(since));
            cond("day >=", Sql::Integer(day_of(since)));
        }
        if let Some(until) = filter.until_ms {
            cond("ts <", Sql::Integer(until));
            cond("day <=", Sql::Integer(day_of(until.saturating_sub(1))));
        }
        let filter_sql = match clauses.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", clauses.join(" AND ")),
        };
        // The same order either way (day grows with ts); each form is the order of the index
        // the planner uses for it, so a page is read off the index without a sort.
        let order = match filter.key_id.or(filter.team_id) {
            Some(_) => "ts DESC, rowid DESC",
            None => "day DESC, ts DESC, rowid DESC",
        };
        args.push(Sql::Integer(int(limit)));
        args.push(Sql::Integer(int(offset)));
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM spend_logs {filter_sql} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map(params_from_iter(args), ledger_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The rollups of UTC days `from_day..=to_day` summed by `group`: by spend, largest first
    /// (ties by group), or by day for [`SpendGroup::Day`].
    pub fn spend_report(
        &self,
        group: SpendGroup,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<SpendTotal>, StoreError> {
        let column = group.column();
        let order = match group {
            SpendGroup::Day => "1",
            _ => "8 DESC, 1",
        };
        let sql = format!(
            "SELECT {column}, sum(requests), sum(input_tokens), sum(output_tokens), \
             sum(cache_read_tokens), sum(cache_write_tokens), sum(reasoning_tokens), \
             sum(cost), sum(unpriced), sum(errors) FROM spend_daily \
             WHERE day >= ?1 AND day <= ?2 GROUP BY {column} ORDER BY {order}"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([from_day, to_day], |r| {
            let group = match r.get::<_, Sql>(0)? {
                Sql::Integer(day) => Some(date(day)),
                Sql::Text(t) if t.is_empty() => None,
                Sql::Text(t) => Some(t),
                _ => None,
            };
            Ok(SpendTotal {
                group,
                requests: count(r.get(1)?),
                input: count(r.get(2)?),
                output: count(r.get(3)?),
                cache_read: count(r.get(4)?),
                cache_write: count(r.get(5)?),
                reasoning: count(r.get(6)?),
                cost_usd: r.get(7)?,
                unpriced: count(r.get(8)?),
                errors: count(r.get(9)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
