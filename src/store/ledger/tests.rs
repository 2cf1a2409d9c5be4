//! The ledger on real SQLite: rollups against the raw rows they sum, spend columns, pruning,
//! windows, listings and the query plans they rely on.

use super::super::tests::temp_dir;
use super::super::{KeySpec, TeamSpec};
use super::*;

/// 2025-12-02T15:04:05Z.
const NOW: i64 = 1_764_687_845_000;

/// A deterministic row: request `i`, `days_ago` before [`NOW`], costing `i % 7` cents (the
/// multiples of 5 unpriced), every 10th an error.
fn row(i: u64, days_ago: i64, key: Option<&str>, team: Option<&str>) -> LedgerRow {
    LedgerRow {
        request_id: format!("req-{i}"),
        ts_ms: NOW - days_ago * DAY_MS + i as i64,
        key_id: key.map(str::to_owned),
        team_id: team.map(str::to_owned),
        end_user: i.is_multiple_of(3).then(|| "alice".to_owned()),
        alias: Some(["gpt", "claude"][i as usize % 2].to_owned()),
        target: Some("t0".into()),
        provider: Some(["openai", "anthropic", "azure"][i as usize % 3].to_owned()),
        upstream_model: Some("m".into()),
        input: 100 + i,
        output: 10 + i % 13,
        cache_read: i % 5,
        cache_write: i % 2,
        reasoning: i % 4,
        cost_usd: (!i.is_multiple_of(5)).then(|| (i % 7) as f64 / 100.0),
        status: if i % 10 == 9 { 500 } else { 200 },
        latency_ms: 12.5,
        estimated: i.is_multiple_of(11),
    }
}

fn cents(usd: f64) -> i64 {
    (usd * 100.0).round() as i64
}

/// A store with team "t" and a key in it; returns the key's id.
fn with_key(s: &mut Store) -> String {
    s.write(|w| w.insert_team(Some("t"), &TeamSpec::default(), 1))
        .unwrap();
    let spec = KeySpec {
        team_id: Some("t".into()),
        ..KeySpec::default()
    };
    s.write(|w| w.insert_key(&spec, 1)).unwrap().0.id
}

/// Every rollup, and the same sums computed from the raw rows, cost in cents.
type Sums = Vec<(i64, String, String, String, String, String, [i64; 9])>;

fn sums(s: &Store, sql: &str) -> Sums {
    let mut st = s.lite().prepare(sql).unwrap();
    let rows = st.query_map([], |r| {
        let mut n = [0i64; 9];
        for (i, v) in n.iter_mut().enumerate() {
            *v = match i {
                6 => cents(r.get(12)?),
                i if i < 6 => r.get(i + 6)?,
                i => r.get(i + 6)?,
            };
        }
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            n,
        ))
    });
    rows.unwrap().map(Result::unwrap).collect()
}

const ROLLUPS: &str = "SELECT day, key_id, team_id, end_user, alias, provider, requests, \
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, cost, \
    unpriced, errors FROM spend_daily ORDER BY 1, 2, 3, 4, 5, 6";

/// A rollup's key: day, key, team, end user, alias, provider.
type Group = (i64, String, String, String, String, String);

/// The same sums as [`ROLLUPS`], computed from the raw rows (unpacked from their batches).
fn from_raw(s: &Store) -> Sums {
    let rows = s
        .reader()
        .ledger_rows(&LedgerFilter::default(), 0, u64::MAX / 2)
        .unwrap();
    let mut groups: std::collections::BTreeMap<Group, ([i64; 9], f64)> = Default::default();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    for r in &rows {
        let k = (
            day_of(r.ts_ms),
            text(&r.key_id),
            text(&r.team_id),
            text(&r.end_user),
            text(&r.alias),
            text(&r.provider),
        );
        let (n, cost) = groups.entry(k).or_default();
        for (i, v) in [
            1,
            r.input,
            r.output,
            r.cache_read,
            r.cache_write,
            r.reasoning,
        ]
        .into_iter()
        .enumerate()
        {
            n[i] += v as i64;
        }
        match r.cost_usd {
            Some(c) => *cost += c,
            None => n[7] += 1,
        }
        n[8] += i64::from(r.status >= 400);
    }
    groups
        .into_iter()
        .map(|((d, a, b, c, e, f), (mut n, cost))| {
            n[6] = cents(cost);
            (d, a, b, c, e, f, n)
        })
        .collect()
}

#[test]
fn rollups_and_spend_columns_equal_the_raw_rows() {
    let mut s = Store::open(None).unwrap();
    let key = with_key(&mut s);
    let mut rows = Vec::new();
    for i in 0..600 {
        let (k, t) = match i % 4 {
            0 => (Some(key.as_str()), Some("t")),
            1 => (Some("key_deleted"), Some("t_gone")),
            2 => (None, None),
            _ => (Some(key.as_str()), Some("t")),
        };
        rows.push(row(i, (i % 3) as i64, k, t));
    }
    for batch in rows.chunks(70) {
        s.append_ledger(batch).unwrap();
    }
    s.append_ledger::<String>(&[]).unwrap();
    let rollups = sums(&s, ROLLUPS);
    assert!(rollups.len() >= 12, "{}", rollups.len());
    assert_eq!(rollups, from_raw(&s));

    let priced = |f: &dyn Fn(&LedgerRow) -> bool| -> i64 {
        rows.iter()
            .filter(|r| f(r))
            .filter_map(|r| r.cost_usd)
            .map(cents)
            .sum()
    };
    let key_spend = priced(&|r| r.key_id.as_deref() == Some(&key));
    assert!(key_spend > 0);
    let stored = s.reader().key(&key).unwrap().unwrap().spend;
    assert_eq!(cents(stored), key_spend);
    let team = s.reader().team("t").unwrap().unwrap().spend;
    assert_eq!(cents(team), priced(&|r| r.team_id.as_deref() == Some("t")));
    let report = s.reader().spend_report(SpendGroup::Key, i64::MIN, i64::MAX);
    let total: i64 = report.unwrap().iter().map(|t| cents(t.cost_usd)).sum();
    assert_eq!(total, priced(&|_| true));
}

#[test]
fn ten_thousand_rows_append_quickly_to_a_file() {
    let dir = temp_dir("ledger-speed");
    let mut s = Store::open(Some(&dir.join("keys.db"))).unwrap();
    let key = with_key(&mut s);
    let rows: Vec<_> = (0..10_000)
        .map(|i| row(i, 0, Some(&key), Some("t")))
        .collect();
    let started = std::time::Instant::now();
    for batch in rows.chunks(500) {
        s.append_ledger(batch).unwrap();
    }
    let took = started.elapsed();
    println!("append_ledger: 10,000 rows in batches of 500 took {took:?}");
    assert_eq!(s.ledger_count().unwrap(), 10_000);
    let day = s
        .reader()
        .spend_report(SpendGroup::Day, 0, i64::MAX)
        .unwrap();
    assert_eq!(day.len(), 1);
    assert_eq!(day[0].requests, 10_000);
    assert_eq!(day[0].group.as_deref(), Some("2025-12-02"));
    drop(s);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn prune_deletes_whole_old_days_and_keeps_rollups() {
    let mut s = Store::open(None).unwrap();
    let today = day_of(NOW);
    // The first and last millisecond of three days: two days ago, yesterday, today.
    let mut rows = Vec::new();
    for (i, days_ago) in [2, 1, 0].into_iter().enumerate() {
        let start = (today - days_ago) * DAY_MS;
        for (j, ts) in [start, start + DAY_MS - 1].into_iter().enumerate() {
            let mut r = row((i * 2 + j) as u64 + 1, 0, Some("k"), None);
            r.ts_ms = ts;
            r.cost_usd = Some(0.25);
            rows.push(r);
        }
    }
    // One batch a day, as control appends them (every 200 ms).
    for day in rows.chunks(2) {
        s.append_ledger(day).unwrap();
    }
    let before = sums(&s, ROLLUPS);
    assert_eq!(s.prune_ledger(1, NOW).unwrap(), 2, "two days ago only");
    let left = s
        .reader()
        .ledger_rows(&LedgerFilter::default(), 0, 100)
        .unwrap();
    let days: Vec<_> = left.iter().map(|r| day_of(r.ts_ms)).collect();
    assert_eq!(days, [today, today, today - 1, today - 1]);
    assert_eq!(sums(&s, ROLLUPS), before, "rollups stay");
    assert_eq!(s.spend_since_day(SpendScope::Key("k"), 0).unwrap(), 1.5);
    assert_eq!(s.prune_ledger(1, NOW).unwrap(), 0);
    assert_eq!(s.prune_ledger(0, NOW).unwrap(), 2, "today is kept");
    assert_eq!(s.ledger_count().unwrap(), 2);
}

#[test]
fn spend_since_day_by_key_team_and_user() {
    let mut s = Store::open(None).unwrap();
    let mut rows = Vec::new();
    for (days_ago, key, team, user, cost) in [
        (3, "a", "t", "u1", Some(1.0)),
        (1, "a", "t", "u2", Some(0.5)),
        (0, "a", "x", "u1", Some(0.25)),
        (0, "b", "t", "u1", Some(2.0)),
        (0, "a", "t", "u1", None),
    ] {
        let mut r = row(1, days_ago, Some(key), Some(team));
        r.end_user = Some(user.into());
        r.cost_usd = cost;
        rows.push(r);
    }
    s.append_ledger(&rows).unwrap();
    let today = day_of(NOW);
    let since = |scope, days_ago| s.spend_since_day(scope, today - days_ago).unwrap();
    assert_eq!(since(SpendScope::Key("a"), 5), 1.75);
    assert_eq!(since(SpendScope::Key("a"), 1), 0.75);
    assert_eq!(since(SpendScope::Key("a"), 0), 0.25);
    assert_eq!(since(SpendScope::Team("t"), 5), 3.5);
    assert_eq!(since(SpendScope::Team("t"), 2), 2.5);
    assert_eq!(since(SpendScope::User("u1"), 5), 3.25);
    assert_eq!(since(SpendScope::User("u2"), 0), 0.0);
    assert_eq!(since(SpendScope::Key("nobody"), 5), 0.0);
    assert_eq!(
        since(SpendScope::Key(""), 5),
        0.0,
        "'' is no key, not a key"
    );
}

#[test]
fn limit_usage_round_trips_and_upserts() {
    let mut s = Store::open(None).unwrap();
    let rows = vec![
        ("key:a:rpm".to_owned(), 60_000, 3.0),
        ("key:a:rpm".to_owned(), 120_000, 1.0),
        ("team:t:budget".to_owned(), 0, 12.5),
    ];
    s.save_limit_usage(&rows).unwrap();
    s.save_limit_usage(&[("key:a:rpm".into(), 120_000, 7.0)])
        .unwrap();
    s.save_limit_usage(&[]).unwrap();
    assert_eq!(
        s.load_limit_usage(60_000).unwrap(),
        [
            ("key:a:rpm".to_owned(), 60_000, 3.0),
            ("key:a:rpm".to_owned(), 120_000, 7.0)
        ]
    );
    assert_eq!(s.load_limit_usage(0).unwrap().len(), 3);
    assert_eq!(s.prune_limit_usage(60_000).unwrap(), 1);
    assert_eq!(s.load_limit_usage(0).unwrap().len(), 2);
}

#[test]
fn listings_filter_page_and_put_the_newest_first() {
    let mut s = Store::open(None).unwrap();
    let rows: Vec<_> = (0..30)
        .map(|i| {
            let key = ["a", "b"][i as usize % 2];
            row(
                i,
                (i % 3) as i64,
                Some(key),
                Some(["t", "u"][i as usize % 3 / 2]),
            )
        })
        .collect();
    s.append_ledger(&rows).unwrap();
    let r = s.reader();
    let ids = |f: LedgerFilter, offset, limit| -> Vec<String> {
        let rows = r.ledger_rows(&f, offset, limit).unwrap();
        rows.into_iter().map(|r| r.request_id).collect()
    };
    let all = r.ledger_rows(&LedgerFilter::default(), 0, 100).unwrap();
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].ts_ms > w[1].ts_ms));
    assert_eq!(
        ids(LedgerFilter::default(), 0, 1),
        ["req-27"],
        "today's latest"
    );
    let by_key = LedgerFilter {
        key_id: Some("a"),
        ..LedgerFilter::default()
    };
    let a = ids(by_key, 0, 100);
    assert_eq!(a.len(), 15);
    assert_eq!(ids(by_key, 2, 3), a[2..5]);
    let today = LedgerFilter {
        since_ms: Some(day_of(NOW) * DAY_MS),
        until_ms: Some((day_of(NOW) + 1) * DAY_MS),
        team_id: Some("t"),
        ..LedgerFilter::default()
    };
    let got = r.ledger_rows(&today, 0, 100).unwrap();
    assert!(!got.is_empty());
    assert!(
        got.iter()
            .all(|r| r.ts_ms / DAY_MS == NOW / DAY_MS && r.team_id.as_deref() == Some("t"))
    );
    let one = LedgerFilter {
        request_id: Some("req-4"),
        ..LedgerFilter::default()
    };
    let got = r.ledger_rows(&one, 0, 10).unwrap();
    assert_eq!(got, [rows[4].clone()], "every field round-trips");
    let alice = LedgerFilter {
        end_user: Some("alice"),
        ..LedgerFilter::default()
    };
    assert_eq!(ids(alice, 0, 100).len(), 10);
}

#[test]
fn listings_and_pruning_read_the_day_index() {
    let s = Store::open(None).unwrap();
    let plan = |sql: &str| -> String {
        let mut st = s
            .lite()
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    let p = plan("SELECT data FROM spend_logs WHERE last_day >= 3 AND first_day <= 4");
    assert!(p.contains("spend_logs_by_day"), "{p}");
    let p = plan("DELETE FROM spend_logs WHERE last_day < 5");
    assert!(p.contains("spend_logs_by_day"), "{p}");
    let p = plan("SELECT sum(cost) FROM spend_daily WHERE team_id = 't' AND day >= 3");
    assert!(p.contains("spend_daily_by_team"), "{p}");
}

#[test]
fn non_finite_costs_and_latencies_do_not_poison_a_batch() {
    let mut s = Store::open(None).unwrap();
    let key = with_key(&mut s);
    let mut r = row(1, 0, Some(&key), None);
    r.cost_usd = Some(f64::NAN);
    r.latency_ms = f64::INFINITY;
    s.append_ledger(&[r]).unwrap();
    let got = &s
        .reader()
        .ledger_rows(&LedgerFilter::default(), 0, 1)
        .unwrap()[0];
    assert_eq!((got.cost_usd, got.latency_ms), (None, 0.0));
    let day = &s
        .reader()
        .spend_report(SpendGroup::Day, 0, i64::MAX)
        .unwrap()[0];
    assert_eq!((day.unpriced, day.cost_usd), (1, 0.0));
    assert_eq!(s.reader().key(&key).unwrap().unwrap().spend, 0.0);
}

#[test]
fn reports_group_and_sort() {
    let mut s = Store::open(None).unwrap();
    let mut rows = Vec::new();
    for (days_ago, key, provider, cost) in [
        (0, Some("a"), "openai", 1.0),
        (1, Some("b"), "openai", 3.0),
        (2, None, "azure", 0.5),
        (0, Some("b"), "azure", 0.25),
    ] {
        let mut r = row(1, days_ago, key, None);
        r.provider = Some(provider.into());
        r.cost_usd = Some(cost);
        rows.push(r);
    }
    s.append_ledger(&rows).unwrap();
    let r = s.reader();
    let today = day_of(NOW);
    let groups = |g, from, to| -> Vec<(Option<String>, f64)> {
        let t = r.spend_report(g, from, to).unwrap();
        t.into_iter().map(|t| (t.group, t.cost_usd)).collect()
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        groups(SpendGroup::Key, 0, today),
        [(some("b"), 3.25), (some("a"), 1.0), (None, 0.5)]
    );
    assert_eq!(
        groups(SpendGroup::Provider, today - 1, today),
        [(some("openai"), 4.0), (some("azure"), 0.25)]
    );
    assert_eq!(
        groups(SpendGroup::Day, 0, today),
        [
            (some("2025-11-30"), 0.5),
            (some("2025-12-01"), 3.0),
            (some("2025-12-02"), 1.25)
        ]
    );
    assert!(groups(SpendGroup::Team, today + 1, today + 9).is_empty());
    assert_eq!(groups(SpendGroup::Team, 0, today), [(None, 4.75)]);
}
