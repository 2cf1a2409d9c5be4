//! The ledger's reads for the admin API: a page of raw rows by filter, newest first, and the
//! rollups of a day range summed by a group. Reports read the rollups only.

use super::super::sql::args;
use super::{DAY_MS, LedgerRow, Reader, SpendTotal, StoreError, count, day_of};
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

// === impl Reader ===

impl Reader<'_> {
    /// One page of raw rows, newest first: the batches of the days asked for are unpacked,
    /// newest batch first, until the page is full and no older batch can hold a newer row.
    pub fn ledger_rows(
        &self,
        filter: &LedgerFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<LedgerRow>, StoreError> {
        let since_day = filter.since_ms.map_or(i64::MIN, day_of);
        let until_day = filter
            .until_ms
            .map_or(i64::MAX, |u| day_of(u.saturating_sub(1)));
        let want = offset.saturating_add(limit) as usize;
        let keep = |r: &LedgerRow| {
            let is =
                |f: Option<&str>, v: &Option<String>| f.is_none_or(|f| v.as_deref() == Some(f));
            is(filter.key_id, &r.key_id)
                && is(filter.team_id, &r.team_id)
                && is(filter.end_user, &r.end_user)
                && filter.request_id.is_none_or(|id| r.request_id == id)
                && filter.since_ms.is_none_or(|s| r.ts_ms >= s)
                && filter.until_ms.is_none_or(|u| r.ts_ms < u)
        };
        let mut found: Vec<LedgerRow> = Vec::new();
        self.conn.each(
            "SELECT last_ts, data FROM spend_logs WHERE last_day >= ?1 AND first_day <= ?2 \
             ORDER BY last_ts DESC, batch DESC",
            args![since_day, until_day],
            |b| {
                let last_ts: i64 = b.get(0)?;
                // Every row still to come is at most `last_ts`: once the page holds `want` rows
                // newer than that, the page is settled.
                if found.len() >= want {
                    found.sort_by_key(|r| std::cmp::Reverse(r.ts_ms));
                    if found[want - 1].ts_ms > last_ts {
                        return Ok(false);
                    }
                }
                let data: Vec<u8> = b.get(1)?;
                found.extend(super::pack::unpack(&data)?.into_iter().rev().filter(keep));
                Ok(true)
            },
        )?;
        // Newest first; rows of one millisecond keep their append order, newest first.
        found.sort_by_key(|r| std::cmp::Reverse(r.ts_ms));
        Ok(found
            .into_iter()
            .skip(offset as usize)
            .take(limit as usize)
            .collect())
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
            // By micro-dollars, so that sums equal but for float rounding (added in another
            // order) tie and go by group; an unpriced group's NULL sum as 0 on both backends.
            _ => "round(coalesce(sum(cost), 0) * 1000000) DESC, 1",
        };
        let sql = format!(
            "SELECT {column}, CAST(sum(requests) AS BIGINT), CAST(sum(input_tokens) AS BIGINT), \
             CAST(sum(output_tokens) AS BIGINT), CAST(sum(cache_read_tokens) AS BIGINT), \
             CAST(sum(cache_write_tokens) AS BIGINT), CAST(sum(reasoning_tokens) AS BIGINT), \
             sum(cost), CAST(sum(unpriced) AS BIGINT), CAST(sum(errors) AS BIGINT) \
             FROM spend_daily WHERE day >= ?1 AND day <= ?2 GROUP BY {column} ORDER BY {order}"
        );
        self.conn.query(&sql, args![from_day, to_day], |r| {
            let group = match group {
                SpendGroup::Day => Some(date(r.get(0)?)),
                _ => Some(r.get::<String>(0)?).filter(|t| !t.is_empty()),
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
        })
    }
}
