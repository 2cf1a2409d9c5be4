//! The store's own API on PostgreSQL, beside SQLite: the same schema, the same answers to the
//! same calls, and the spool's exactly-once replay, even of a spool replayed twice.

use std::time::Duration;

use shardgate::store::pg::PgOptions;
use shardgate::store::{
    Fault, KeySpec, LedgerFilter, LedgerRow, SCHEMA_VERSION, SpendGroup, SpendScope, SpendTotal,
    Store, TeamSpec, day_of,
};

use super::common::TempDir;
use super::common::pg::{self, PgServer};

fn options(url: &str, dir: &std::path::Path) -> PgOptions {
    PgOptions {
        url: url.to_owned(),
        dir: dir.to_owned(),
        spool_max: 1 << 20,
    }
}

/// PostgreSQL's migrations reach the same version as SQLite's with the same tables and
/// columns (PostgreSQL adds only the `rowid` SQLite has built in); a database from a newer
/// build is refused before anything is written to it.
#[test]
fn the_schema_matches_sqlite_and_a_newer_database_is_refused_untouched() {
    let url = pg::shared().database();
    let dir = TempDir::new();
    let opts = options(&url, &dir.0.join("spool"));
    let store = Store::open_pg(&opts).unwrap();
    assert_eq!(store.schema_version(), SCHEMA_VERSION);
    drop(store);
    let lite = dir.0.join("s.db");
    drop(Store::open(Some(&lite)).unwrap());
    let lite = rusqlite::Connection::open(&lite).unwrap();
    let mut st = lite
        .prepare(
            "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' ORDER BY m.name, p.cid",
        )
        .unwrap();
    let lite: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let columns = |c: &mut postgres::Client| -> Vec<(String, String)> {
        c.query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name != 'shardgate_meta' \
             AND column_name != 'rowid' ORDER BY 1, ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(columns(&mut c), lite);

    c.batch_execute("UPDATE shardgate_meta SET value = 9 WHERE name = 'schema'")
        .unwrap();
    let before = columns(&mut c);
    let err = Store::open_pg(&opts).err().expect("refused");
    assert_eq!(err.fault, Fault::TooNew);
    assert!(
        err.to_string().contains("has schema version 9, newer than"),
        "{err}"
    );
    assert_eq!(columns(&mut c), before);
    let meta: Vec<(String, i64)> = c
        .query("SELECT name, value FROM shardgate_meta ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(meta, [("data".to_owned(), 0), ("schema".to_owned(), 9)]);
}

const NOW: i64 = 1_764_687_845_000;

fn row(i: u64, key: &str, team: &str) -> LedgerRow {
    LedgerRow {
        request_id: format!("req-{i}"),
        ts_ms: NOW - (i as i64 % 3) * 86_400_000 + i as i64,
        key_id: Some(key.to_owned()),
        team_id: i.is_multiple_of(2).then(|| team.to_owned()),
        end_user: i.is_multiple_of(3).then(|| "alice".to_owned()),
        alias: Some(["gpt", "claude"][i as usize % 2].to_owned()),
        provider: Some("openai".to_owned()),
        input: 100 + i,
        output: 10 + i % 7,
        cost_usd: (!i.is_multiple_of(5)).then(|| (i % 7) as f64 / 100.0),
        status: if i % 10 == 9 { 500 } else { 200 },
        latency_ms: 3.5,
        ..LedgerRow::default()
    }
}

/// Dollars to micro-dollars: sums may differ in their last bit by the order they were added.
fn micros(usd: f64) -> i64 {
    (usd * 1e6).round() as i64
}

/// Everything a store answers after the same calls, with its random key id replaced.
fn answers(s: &mut Store) -> Vec<String> {
    s.write(|w| w.insert_team(Some("t"), &TeamSpec::default(), 1))
        .unwrap();
    let spec = KeySpec {
        alias: Some("k".into()),
        team_id: Some("t".into()),
        models: vec!["gpt".into()],
        ..KeySpec::default()
    };
    let (key, _) = s.write(|w| w.insert_key(&spec, 2)).unwrap();
    let (other, _) = s.write(|w| w.insert_key(&KeySpec::default(), 2)).unwrap();
    let rows: Vec<LedgerRow> = (0..40).map(|i| row(i, &key.id, "t")).collect();
    s.append_ledger(&rows[..25]).unwrap();
    s.append_ledger(&rows[25..]).unwrap();
    s.touch_last_used(&[(key.id.clone(), 50), (key.id.clone(), 40)])
        .unwrap();
    s.save_limit_usage(&[("key:a".into(), NOW, 3.0), ("key:b".into(), 5, 1.0)])
        .unwrap();
    s.save_limit_usage(&[("key:a".into(), NOW, 4.0)]).unwrap();
    let mut out = Vec::new();
    let r = s.reader();
    out.push(format!(
        "{:?}",
        r.key(&key.id)
            .unwrap()
            .map(|k| (micros(k.spend), k.last_used_ms))
    ));
    out.push(format!(
        "{:?}",
        r.keys(Default::default(), 0, 10).unwrap().len()
    ));
    out.push(format!(
        "{:?}",
        r.team("t").unwrap().map(|t| micros(t.spend))
    ));
    for g in [
        SpendGroup::Key,
        SpendGroup::Team,
        SpendGroup::Model,
        SpendGroup::Day,
        SpendGroup::User,
    ] {
        out.push(format!(
            "{:?}",
            r.spend_report(g, day_of(NOW) - 5, day_of(NOW))
                .unwrap()
                .into_iter()
                .map(|t| (micros(t.cost_usd), SpendTotal { cost_usd: 0.0, ..t }))
                .collect::<Vec<_>>()
        ));
    }
    let page = r.ledger_rows(&LedgerFilter::default(), 3, 10).unwrap();
    out.push(format!("{page:?}"));
    let alice = LedgerFilter {
        end_user: Some("alice"),
        ..LedgerFilter::default()
    };
    out.push(format!(
        "{:?}",
        r.ledger_rows(&alice, 0, 100).unwrap().len()
    ));
    out.push(format!(
        "{:?}",
        s.spend_since_day(SpendScope::Team("t"), day_of(NOW) - 1)
            .map(micros)
    ));
    let users = s.spend_by_user_since_day(0).unwrap();
    let users: Vec<_> = users.into_iter().map(|(u, c)| (u, micros(c))).collect();
    out.push(format!("{users:?}"));
    out.push(format!("{:?}", s.load_limit_usage(NOW - 1)));
    out.push(format!("{:?}", s.prune_limit_usage(NOW)));
    out.push(format!("{:?}", s.prune_ledger(1, NOW)));
    out.push(format!("{:?}", s.ledger_count()));
    let gone = s.write(|w| w.delete_teams(&["t".to_owned()])).unwrap();
    out.push(format!("{:?}", gone == [key.id.clone()]));
    let left: Vec<String> = s.key_records().unwrap().into_iter().map(|r| r.id).collect();
    out.push(format!("{:?}", left == [other.id.clone()]));
    let dup = s.write(|w| w.insert_team(Some("u"), &TeamSpec::default(), 3));
    let dup = dup.and_then(|_| s.write(|w| w.insert_team(Some("u"), &TeamSpec::default(), 3)));
    out.push(format!("{:?}", dup.unwrap_err().fault));
    out.into_iter().map(|a| a.replace(&key.id, "KEY")).collect()
}

/// The same calls on SQLite and on PostgreSQL answer alike, to the last rollup and page.
#[test]
fn both_backends_answer_the_same_calls_alike() {
    let dir = TempDir::new();
    let mut lite = Store::open(Some(&dir.0.join("s.db"))).unwrap();
    let url = pg::shared().database();
    let mut pg = Store::open_pg(&options(&url, &dir.0.join("spool"))).unwrap();
    let (a, b) = (answers(&mut lite), answers(&mut pg));
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a, b);
    }
    assert_eq!(a.len(), b.len());
}

/// Rows appended while the server is down are spooled, stored once it is back, and stored
/// once only, even when the same spool is replayed again (a crash after the commit, before
/// the spool was emptied).
#[test]
fn a_spool_is_stored_exactly_once_even_replayed_twice() {
    let server = PgServer::start();
    let url = server.database();
    let dir = TempDir::new();
    let spool = dir.0.join("spool");
    let mut s = Store::open_pg(&options(&url, &spool)).unwrap();
    server.stop();
    let rows: Vec<LedgerRow> = (0..30).map(|i| row(i, "key_x", "t")).collect();
    s.append_ledger(&rows[..10]).unwrap();
    s.append_ledger(&rows[10..]).unwrap();
    assert_eq!(s.heartbeat().spooled, 30);
    let err = s.write(|w| w.insert_team(None, &TeamSpec::default(), 1));
    assert_eq!(err.unwrap_err().fault, Fault::Unavailable);
    let copy = std::fs::read(spool.join("ledger.spool")).unwrap();
    server.restart();
    let back = std::time::Instant::now();
    while s.heartbeat().spooled > 0 {
        assert!(back.elapsed() < Duration::from_secs(10), "never replayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.ledger_count().unwrap(), 30);
    drop(s);
    std::fs::write(spool.join("ledger.spool"), copy).unwrap();
    let s = Store::open_pg(&options(&url, &spool)).unwrap();
    assert_eq!(
        s.ledger_count().unwrap(),
        30,
        "the second replay stored nothing"
    );
    let all = s
        .reader()
        .ledger_rows(&LedgerFilter::default(), 0, 100)
        .unwrap();
    assert_eq!(all.len(), 30);
    let today = s
        .reader()
        .spend_report(SpendGroup::Key, 0, i64::MAX)
        .unwrap();
    assert_eq!(today[0].requests, 30, "rollups once too");
}

/// Replicas that start together on an empty database migrate it once between them (an
/// advisory lock): both come up at the latest version.
#[test]
fn replicas_starting_together_migrate_once() {
    let url = pg::shared().database();
    let dir = TempDir::new();
    let opened: Vec<_> = (0..3)
        .map(|i| {
            let opts = options(&url, &dir.0.join(format!("spool-{i}")));
            std::thread::spawn(move || Store::open_pg(&opts).map(|s| s.schema_version()))
        })
        .collect();
    for t in opened {
        assert_eq!(t.join().unwrap().unwrap(), SCHEMA_VERSION);
    }
}
