//! The spend endpoints over a real in-memory store: shapes, filters, paging, reports, CSV, and
//! every refusal.

use serde_json::{Value, json};

use super::super::tests::{Harness, NOW};
use super::super::{Context, Reply, dispatch, serves};
use crate::store::LedgerRow;

/// 2025-12-02, the harness's day.
const TODAY: &str = "2025-12-02";

fn row(id: &str, ts_ms: i64, key: Option<&str>, cost: Option<f64>) -> LedgerRow {
    LedgerRow {
        request_id: id.into(),
        ts_ms,
        key_id: key.map(str::to_owned),
        team_id: key.map(|_| "t".to_owned()),
        end_user: Some("alice".into()),
        alias: Some("gpt".into()),
        target: Some("gpt#0".into()),
        provider: Some("openai".into()),
        upstream_model: Some("gpt-4o".into()),
        input: 100,
        output: 20,
        cache_read: 40,
        cache_write: 5,
        reasoning: 3,
        cost_usd: cost,
        status: 200,
        latency_ms: 250.5,
        estimated: false,
    }
}

/// A harness whose team "t" has a key; returns it and the key's id.
fn harness() -> (Harness, String) {
    let mut h = Harness::new();
    h.post("/team/new", json!({"team_id": "t"}));
    let (key, _) = h.key(json!({"team_id": "t"}));
    (h, key)
}

/// Three rows: yesterday, today, and today a second later by another (unknown) key.
fn three(h: &mut Harness, key: &str) {
    let yesterday = row("r1", NOW - 86_400_000, Some(key), Some(0.25));
    let today = row("r2", NOW, Some(key), Some(0.5));
    let mut other = row("r3", NOW + 1000, Some("key_other"), None);
    other.status = 429;
    other.team_id = None;
    other.end_user = Some("bob".into());
    h.store.append_ledger(&[yesterday, today, other]).unwrap();
}

fn raw(h: &mut Harness, target: &str) -> Reply {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let cx = Context {
        now_ms: h.now_ms,
        config_keys: &[],
        aliases: &[],
    };
    dispatch(&mut h.store, &cx, "GET", path, query, b"")
}

fn ids(v: &Value) -> Vec<&str> {
    let rows = v.as_array().unwrap();
    rows.iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect()
}

#[test]
fn the_spend_paths_are_served_by_get() {
    assert!(serves("/spend/logs") && serves("/global/spend/report"));
    assert!(!serves("/spend/report") && !serves("/global/spend/logs"));
    let mut h = Harness::new();
    h.refused("POST", "/spend/logs", "{}")
        .is(405, "method_not_allowed", None);
    h.refused("POST", "/global/spend/report", "{}")
        .is(405, "method_not_allowed", None);
}

#[test]
fn logs_are_litellm_rows_newest_first() {
    let (mut h, key) = harness();
    three(&mut h, &key);
    let v = h.get("/spend/logs");
    assert_eq!(ids(&v), ["r3", "r2", "r1"]);
    assert_eq!(
        v[1],
        json!({
            "request_id": "r2", "startTime": "2025-12-02T15:04:05Z", "api_key": key,
            "team_id": "t", "end_user": "alice", "model": "gpt", "model_group": "gpt",
            "target": "gpt#0", "custom_llm_provider": "openai", "upstream_model": "gpt-4o",
            "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
            "cache_read_input_tokens": 40, "cache_creation_input_tokens": 5,
            "reasoning_tokens": 3, "spend": 0.5, "status": 200, "latency_ms": 250.5,
            "estimated": false,
        })
    );
    assert_eq!(
        (&v[0]["spend"], &v[0]["status"]),
        (&Value::Null, &json!(429))
    );
    let reply = raw(&mut h, "/spend/logs");
    assert_eq!(
        (reply.status, reply.content_type),
        (200, "application/json")
    );
}

#[test]
fn logs_filter_by_key_team_user_request_and_dates() {
    let (mut h, key) = harness();
    three(&mut h, &key);
    let mut anon = row("r4", NOW + 2000, None, Some(1.0));
    anon.end_user = None;
    h.store.append_ledger(&[anon]).unwrap();
    let get = |h: &mut Harness, q: &str| ids(&h.get(&format!("/spend/logs?{q}"))).join(" ");
    assert_eq!(get(&mut h, &format!("api_key={key}")), "r2 r1");
    assert_eq!(get(&mut h, &format!("key_id={key}&api_key={key}")), "r2 r1");
    assert_eq!(get(&mut h, "key_id=key_other"), "r3");
    assert_eq!(get(&mut h, "team_id=t"), "r2 r1");
    assert_eq!(get(&mut h, "user=bob"), "r3");
    assert_eq!(get(&mut h, "request_id=r1"), "r1");
    assert_eq!(get(&mut h, &format!("start_date={TODAY}")), "r4 r3 r2");
    assert_eq!(get(&mut h, "end_date=2025-12-01"), "r1");
    assert_eq!(
        get(
            &mut h,
            &format!("start_date=2025-12-01&end_date={TODAY}&user=alice")
        ),
        "r2 r1",
        "the end date is inclusive"
    );
    assert_eq!(get(&mut h, "start_date=2025-12-03"), "");
    assert_eq!(get(&mut h, "limit=2"), "r4 r3");
    assert_eq!(get(&mut h, "limit=2&page=2"), "r2 r1");
    assert_eq!(get(&mut h, "limit=2&page=3"), "");
    assert_eq!(
        get(&mut h, "team_id=&format=json"),
        "r4 r3 r2 r1",
        "empty is absent"
    );
}

#[test]
fn a_page_holds_at_most_ten_thousand_rows() {
    let mut h = Harness::new();
    let rows: Vec<_> = (0..10_001)
        .map(|i| row(&format!("r{i}"), NOW + i, None, None))
        .collect();
    h.store.append_ledger(&rows).unwrap();
    assert_eq!(
        h.get("/spend/logs?limit=50000").as_array().unwrap().len(),
        10_000
    );
    assert_eq!(h.get("/spend/logs").as_array().unwrap().len(), 100);
}

#[test]
fn logs_refusals() {
    let mut h = Harness::new();
    for (query, code, param) in [
        ("api_kye=k", "unknown_field", "api_kye"),
        ("group_by=day", "unknown_field", "group_by"),
        ("start_date=2025-13-01", "invalid_field", "start_date"),
        ("start_date=2025-02-30", "invalid_field", "start_date"),
        ("end_date=2025-12-2", "invalid_field", "end_date"),
        ("end_date=2025-12-02T00:00:00Z", "invalid_field", "end_date"),
        (
            "start_date=2025-12-02&end_date=2025-12-01",
            "invalid_field",
            "end_date",
        ),
        ("limit=0", "invalid_field", "limit"),
        ("page=-1", "invalid_field", "page"),
        ("format=xml", "invalid_field", "format"),
        ("api_key=a&key_id=b", "invalid_field", "key_id"),
    ] {
        let r = h.refused("GET", &format!("/spend/logs?{query}"), "");
        r.is(400, code, Some(param));
    }
    let r = h.refused("GET", "/spend/logs?start_date=yesterday", "");
    assert!(
        r.message.contains("YYYY-MM-DD") && r.message.contains("yesterday"),
        "{}",
        r.message
    );
}

#[test]
fn reports_group_the_rollups() {
    let (mut h, key) = harness();
    three(&mut h, &key);
    let both = "start_date=2025-12-01&end_date=2025-12-02";
    let v = h.get(&format!("/global/spend/report?{both}&group_by=key"));
    assert_eq!(
        v,
        json!([
            {"group": key, "requests": 2, "prompt_tokens": 200, "completion_tokens": 40,
             "cache_read_input_tokens": 80, "cache_creation_input_tokens": 10,
             "reasoning_tokens": 6, "spend": 0.75, "unpriced_requests": 0, "errors": 0},
            {"group": "key_other", "requests": 1, "prompt_tokens": 100, "completion_tokens": 20,
             "cache_read_input_tokens": 40, "cache_creation_input_tokens": 5,
             "reasoning_tokens": 3, "spend": 0.0, "unpriced_requests": 1, "errors": 1},
        ])
    );
    let groups = |h: &mut Harness, q: &str| -> Vec<(Value, Value)> {
        let v = h.get(&format!("/global/spend/report?{q}"));
        let rows = v.as_array().unwrap();
        rows.iter()
            .map(|g| (g["group"].clone(), g["spend"].clone()))
            .collect()
    };
    assert_eq!(
        groups(&mut h, &format!("{both}&group_by=day")),
        [
            (json!("2025-12-01"), json!(0.25)),
            (json!(TODAY), json!(0.5))
        ]
    );
    assert_eq!(
        groups(&mut h, both),
        [(json!("t"), json!(0.75)), (json!(null), json!(0.0))],
        "by team unless told"
    );
    assert_eq!(
        groups(&mut h, &format!("{both}&group_by=user")),
        [(json!("alice"), json!(0.75)), (json!("bob"), json!(0.0))]
    );
    assert_eq!(
        groups(
            &mut h,
            &format!("start_date={TODAY}&end_date={TODAY}&group_by=model")
        ),
        [(json!("gpt"), json!(0.5))]
    );
    assert_eq!(
        groups(&mut h, &format!("{both}&group_by=provider")),
        [(json!("openai"), json!(0.75))]
    );
    // Reports read the rollups only: pruning every raw row changes nothing.
    let before = h.get(&format!("/global/spend/report?{both}&group_by=day"));
    h.store.prune_ledger(0, NOW + 10 * 86_400_000).unwrap();
    assert_eq!(h.store.ledger_count().unwrap(), 0);
    assert_eq!(
        h.get(&format!("/global/spend/report?{both}&group_by=day")),
        before
    );
}

#[test]
fn report_refusals() {
    let mut h = Harness::new();
    let r = h.refused("GET", "/global/spend/report?end_date=2025-12-01", "");
    r.is(400, "invalid_field", Some("start_date"));
    assert!(r.message.contains("start_date"));
    h.refused("GET", "/global/spend/report?start_date=2025-12-01", "")
        .is(400, "invalid_field", Some("end_date"));
    let both = "start_date=2025-12-01&end_date=2025-12-02";
    for (query, code, param) in [
        (format!("{both}&group_by=week"), "invalid_field", "group_by"),
        (format!("{both}&format=tsv"), "invalid_field", "format"),
        (format!("{both}&limit=5"), "unknown_field", "limit"),
        (
            "start_date=2025-12-01&end_date=12/02/2025".into(),
            "invalid_field",
            "end_date",
        ),
        (
            "start_date=2025-12-03&end_date=2025-12-02".into(),
            "invalid_field",
            "end_date",
        ),
    ] {
        let r = h.refused("GET", &format!("/global/spend/report?{query}"), "");
        r.is(400, code, Some(param));
    }
}

#[test]
fn csv_has_a_header_and_quotes_what_needs_it() {
    let mut h = Harness::new();
    let mut r = row("line1\nline2", NOW, None, Some(0.5));
    r.end_user = Some("Doe, Jane".into());
    r.alias = Some("say \"hi\"".into());
    r.target = Some("cr\rhere".into());
    h.store.append_ledger(&[r]).unwrap();
    let reply = raw(&mut h, "/spend/logs?format=csv");
    assert_eq!(
        (reply.status, reply.content_type),
        (200, "text/csv; charset=utf-8")
    );
    let text = String::from_utf8(reply.body).unwrap();
    let (header, rest) = text.split_once("\r\n").unwrap();
    assert_eq!(header, super::LOG_FIELDS.join(","));
    assert_eq!(
        rest,
        "\"line1\nline2\",2025-12-02T15:04:05Z,,,\"Doe, Jane\",\"say \"\"hi\"\"\",\
         \"say \"\"hi\"\"\",\"cr\rhere\",openai,gpt-4o,100,20,120,40,5,3,0.5,200,250.5,false\r\n"
    );

    let reply = raw(
        &mut h,
        &format!(
            "/global/spend/report?start_date={TODAY}&end_date={TODAY}&group_by=user&format=csv"
        ),
    );
    assert_eq!(reply.content_type, "text/csv; charset=utf-8");
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        "group,requests,prompt_tokens,completion_tokens,cache_read_input_tokens,\
         cache_creation_input_tokens,reasoning_tokens,spend,unpriced_requests,errors\r\n\
         \"Doe, Jane\",1,100,20,40,5,3,0.5,0,0\r\n"
    );
    let empty = raw(&mut h, "/spend/logs?format=csv&start_date=2030-01-01");
    assert_eq!(
        String::from_utf8(empty.body).unwrap(),
        format!("{}\r\n", super::LOG_FIELDS.join(","))
    );
    // A refusal is JSON whatever format was asked for.
    let bad = raw(&mut h, "/spend/logs?format=csv&limit=0");
    assert_eq!((bad.status, bad.content_type), (400, "application/json"));
}

#[test]
fn keys_and_teams_show_the_spend_the_ledger_adds() {
    let (mut h, key) = harness();
    three(&mut h, &key);
    h.store
        .append_ledger(&[row("r9", NOW, Some(&key), Some(1.25))])
        .unwrap();
    let info = h.get(&format!("/key/info?key={key}"));
    assert_eq!(info["info"]["spend"], json!(2.0));
    let team = h.get("/team/info?team_id=t");
    assert_eq!(team["team_info"]["spend"], json!(2.0));
    assert_eq!(team["keys"][0]["spend"], json!(2.0));
    let listed = h.get("/key/list");
    let keys = listed["keys"].as_array().unwrap();
    let mine = keys.iter().find(|k| k["key_id"] == json!(key)).unwrap();
    assert_eq!(mine["spend"], json!(2.0));
}
