//! The key and team admin API through the binary: every endpoint, every error, and what a
//! change does to requests (blocked, expired, rotated, deleted keys; team allow-lists).

mod common;

use std::time::{Duration, Instant};

use common::http;
use common::{Driver, Gateway, eventually, mock};
use serde_json::Value;

pub fn managed_config(base: &str, extra: &str) -> String {
    common::config(
        base,
        &format!("  master_key: {{ env: MASTER_KEY }}\n{extra}"),
    )
}

fn chat(gw: &Gateway, key: &str, model: &str) -> http::Response {
    gw.chat_as(
        key,
        &format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#),
    )
}

fn ok(r: http::Response) -> Value {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn code(r: &http::Response) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

fn key_lifecycle(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&managed_config(&up.base_url(), ""), driver);
    let made = ok(gw.admin_call(
        "POST",
        "/key/generate",
        r#"{"key_alias":"svc-a","models":["gpt-4o-mini"],"metadata":{"owner":"ml"},"rpm_limit":100}"#,
    ));
    let secret = made["key"].as_str().unwrap().to_owned();
    let id = made["key_id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk-") && secret.len() >= 46, "{secret}");
    assert_eq!(
        made["key_name"],
        format!("sk-...{}", &secret[secret.len() - 4..])
    );
    assert_eq!(made["rpm_limit"], 100);
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 200);
    assert_eq!(chat(&gw, &secret, "restricted").status, 403);

    // The listing masks it and never shows the secret again; info has its last use.
    let list = ok(gw.admin_call("GET", "/key/list", ""));
    assert!(!list.to_string().contains(&secret));
    let info = ok(gw.admin_call("GET", &format!("/key/info?key={id}"), ""));
    assert_eq!(info["info"]["key_alias"], "svc-a");
    assert_eq!(info["info"]["source"], "store");
    assert!(info["info"]["last_used_at"].is_string(), "{info}");
    // Info by the secret itself works too (LiteLLM's scripts send it).
    assert_eq!(
        ok(gw.admin_call("GET", &format!("/key/info?key={secret}"), ""))["key"],
        id.as_str()
    );

    let body = format!(r#"{{"key":"{id}"}}"#);
    ok(gw.admin_call("POST", "/key/block", &body));
    let r = chat(&gw, &secret, "gpt-4o-mini");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("blocked"), "{}", r.text());
    ok(gw.admin_call("POST", "/key/unblock", &body));
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 200);

    // Update: the allow-list moves; an update answers with the whole key.
    let upd = ok(gw.admin_call(
        "POST",
        "/key/update",
        &format!(r#"{{"key":"{id}","models":["restricted"]}}"#),
    ));
    assert_eq!(upd["models"], serde_json::json!(["restricted"]));
    assert_eq!(chat(&gw, &secret, "restricted").status, 200);
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 403);

    // Rotation with a grace period: both work; without one the old stops at once.
    let rot = ok(gw.admin_call(
        "POST",
        "/key/regenerate",
        &format!(r#"{{"key":"{id}","grace_period":"1h"}}"#),
    ));
    let second = rot["key"].as_str().unwrap().to_owned();
    assert_eq!(rot["key_id"], id.as_str(), "the id is stable");
    assert_eq!(
        chat(&gw, &secret, "restricted").status,
        200,
        "old secret within grace"
    );
    assert_eq!(chat(&gw, &second, "restricted").status, 200);
    let rot = ok(gw.admin_call("POST", "/key/regenerate", &format!(r#"{{"key":"{id}"}}"#)));
    let third = rot["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gw, &second, "restricted").status, 401);
    assert_eq!(chat(&gw, &third, "restricted").status, 200);

    let del = ok(gw.admin_call("POST", "/key/delete", &format!(r#"{{"keys":["{id}"]}}"#)));
    assert_eq!(del["deleted_keys"], serde_json::json!([id]));
    assert_eq!(chat(&gw, &third, "restricted").status, 401);
    assert_eq!(
        gw.admin_call("GET", &format!("/key/info?key={id}"), "")
            .status,
        404
    );
}

fn expired_keys_say_so(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&managed_config(&up.base_url(), ""), driver);
    let made = ok(gw.admin_call("POST", "/key/generate", r#"{"duration":"1s"}"#));
    let secret = made["key"].as_str().unwrap().to_owned();
    assert!(made["expires"].is_string());
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 200);
    std::thread::sleep(Duration::from_millis(1_100));
    let r = chat(&gw, &secret, "gpt-4o-mini");
    assert_eq!(r.status, 401);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        r.text()
    );
}

fn every_error_is_json_with_a_reason(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&managed_config(&up.base_url(), ""), driver);
    let admin = gw.admin.unwrap();
    let r = http::request(
        admin,
        "GET",
        "/key/list",
        &[("authorization", "Bearer nope")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["message"], "invalid master key");
    let r = http::request(admin, "GET", "/key/list", &[], b"");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("missing master key"));

    let r = gw.admin_call("GET", "/key/info?key=key_00000000000000000000", "");
    assert_eq!((r.status, code(&r).as_str()), (404, "key_not_found"));
    let r = gw.admin_call("POST", "/key/generate", r#"{"rpm_limit":"lots"}"#);
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_field"));
    assert_eq!(r.json()["error"]["param"], "rpm_limit");
    let r = gw.admin_call("POST", "/key/generate", r#"{"rpm_limt":5}"#);
    assert_eq!((r.status, code(&r).as_str()), (400, "unknown_field"));
    assert!(r.text().contains("rpm_limt"));
    let r = gw.admin_call("POST", "/key/generate", r#"{"models":["no-such-model"]}"#);
    assert_eq!((r.status, code(&r).as_str()), (400, "unknown_model"));
    let r = gw.admin_call("POST", "/key/generate", r#"{"duration":"soon"}"#);
    assert_eq!(r.status, 400);
    let r = gw.admin_call("POST", "/key/generate", "{not json");
    assert_eq!((r.status, code(&r).as_str()), (400, "invalid_json"));
    ok(gw.admin_call("POST", "/key/generate", r#"{"key_alias":"dup"}"#));
    let r = gw.admin_call("POST", "/key/generate", r#"{"key_alias":"dup"}"#);
    assert_eq!((r.status, code(&r).as_str()), (409, "duplicate_alias"));
    let r = gw.admin_call("GET", "/key/generate", "");
    assert_eq!(r.status, 405);
    let r = gw.admin_call("POST", "/key/block", r#"{"key":"config:team-a"}"#);
    assert_eq!((r.status, code(&r).as_str()), (400, "read_only_key"));
    let r = gw.admin_call("GET", "/team/info?team_id=nope", "");
    assert_eq!((r.status, code(&r).as_str()), (404, "team_not_found"));
    let r = gw.admin_call(
        "POST",
        "/key/delete",
        r#"{"keys":["key_00000000000000000000"]}"#,
    );
    assert_eq!(r.status, 404);
    let big = format!(r#"{{"metadata":{{"x":"{}"}}}}"#, "a".repeat(2 << 20));
    let r = gw.admin_call("POST", "/key/generate", &big);
    assert_eq!(r.status, 413);
    let r = gw.admin_call("GET", "/nope", "");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].is_string());
}

fn without_a_master_key_the_admin_api_is_off(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&common::config(&up.base_url(), ""), driver);
    for (m, p) in [
        ("POST", "/key/generate"),
        ("GET", "/key/list"),
        ("POST", "/team/new"),
    ] {
        let r = gw.admin_call(m, p, "{}");
        assert_eq!(r.status, 403, "{m} {p}");
        assert!(r.text().contains("set server.master_key"), "{}", r.text());
    }
    assert_eq!(gw.admin_get("/health").status, 200);
    assert_eq!(gw.admin_get("/metrics").status, 200);
}

fn metrics_can_require_the_master_key(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(
        &managed_config(&up.base_url(), "  metrics_auth: master_key\n"),
        driver,
    );
    assert_eq!(gw.admin_get("/metrics").status, 401);
    assert_eq!(gw.admin_get("/health").status, 200);
    assert_eq!(gw.admin_get("/ready").status, 200);
    assert_eq!(gw.admin_call("GET", "/metrics", "").status, 200);
}

fn teams_bound_their_keys(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&managed_config(&up.base_url(), ""), driver);
    let team = ok(gw.admin_call(
        "POST",
        "/team/new",
        r#"{"team_id":"search","team_alias":"Search","models":["gpt-4o-mini"],"tpm_limit":1000}"#,
    ));
    assert_eq!(team["team_id"], "search");
    let r = gw.admin_call("POST", "/team/new", r#"{"team_id":"search"}"#);
    assert_eq!(r.status, 409);
    let r = gw.admin_call(
        "POST",
        "/key/generate",
        r#"{"team_id":"search","models":["restricted"]}"#,
    );
    assert_eq!(
        r.status,
        400,
        "a key may list only its team's models: {}",
        r.text()
    );
    let r = gw.admin_call("POST", "/key/generate", r#"{"team_id":"nope"}"#);
    assert_eq!(r.status, 404);
    let key = ok(gw.admin_call("POST", "/key/generate", r#"{"team_id":"search"}"#));
    let secret = key["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 200);
    assert_eq!(
        chat(&gw, &secret, "restricted").status,
        403,
        "the team's list applies"
    );

    let info = ok(gw.admin_call("GET", "/team/info?team_id=search", ""));
    assert_eq!(info["team_info"]["team_alias"], "Search");
    assert_eq!(info["keys"].as_array().unwrap().len(), 1);
    let list = ok(gw.admin_call("GET", "/team/list", ""));
    assert_eq!(list.as_array().unwrap().len(), 1);

    ok(gw.admin_call(
        "POST",
        "/team/update",
        r#"{"team_id":"search","blocked":true}"#,
    ));
    let r = chat(&gw, &secret, "gpt-4o-mini");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("team"), "{}", r.text());
    ok(gw.admin_call(
        "POST",
        "/team/update",
        r#"{"team_id":"search","blocked":false,"models":[]}"#,
    ));
    assert_eq!(
        chat(&gw, &secret, "restricted").status,
        200,
        "an empty list allows all"
    );

    let del = ok(gw.admin_call("POST", "/team/delete", r#"{"team_ids":["search"]}"#));
    assert_eq!(del["deleted_teams"], serde_json::json!(["search"]));
    assert_eq!(del["deleted_keys"].as_array().unwrap().len(), 1);
    assert_eq!(chat(&gw, &secret, "gpt-4o-mini").status, 401);
}

fn config_keys_are_listed_read_only(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&managed_config(&up.base_url(), ""), driver);
    ok(gw.admin_call("POST", "/key/generate", r#"{"key_alias":"from-api"}"#));
    let list = ok(gw.admin_call("GET", "/key/list", ""));
    let keys = list["keys"].as_array().unwrap();
    let sources: Vec<(&str, &str)> = keys
        .iter()
        .map(|k| (k["source"].as_str().unwrap(), k["key_id"].as_str().unwrap()))
        .collect();
    assert!(
        sources.contains(&("config", "config:team-a")),
        "{sources:?}"
    );
    assert!(sources.contains(&("config", "config:admin")), "{sources:?}");
    assert_eq!(sources.iter().filter(|(s, _)| *s == "store").count(), 1);
    assert_eq!(list["total_count"], 3);
    // Config keys keep working beside store keys.
    assert_eq!(chat(&gw, common::TEAM_A, "gpt-4o-mini").status, 200);
}

both_drivers!(
    key_lifecycle,
    expired_keys_say_so,
    every_error_is_json_with_a_reason,
    without_a_master_key_the_admin_api_is_off,
    metrics_can_require_the_master_key,
    teams_bound_their_keys,
    config_keys_are_listed_read_only,
);

/// Acknowledged changes survive `kill -9` right after the reply, and a restart finds them.
#[test]
fn acknowledged_changes_survive_kill_9() {
    let up = mock();
    let dir = common::TempDir::new();
    let db = dir.0.join("data/shardgate.db");
    let cfg = managed_config(&up.base_url(), "").replacen(
        "providers:",
        &format!("store: {{ path: {} }}\nproviders:", db.display()),
        1,
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    assert!(
        gw.stderr.lock().unwrap().contains("store: SQLite"),
        "{}",
        gw.stderr.lock().unwrap()
    );
    let team = ok(gw.admin_call("POST", "/team/new", r#"{"team_id":"t1"}"#));
    assert_eq!(team["team_id"], "t1");
    let made = ok(gw.admin_call(
        "POST",
        "/key/generate",
        r#"{"key_alias":"durable","team_id":"t1"}"#,
    ));
    let blocked = ok(gw.admin_call("POST", "/key/generate", r#"{"key_alias":"blocked"}"#));
    let body = format!(r#"{{"key":"{}"}}"#, blocked["key_id"].as_str().unwrap());
    ok(gw.admin_call("POST", "/key/block", &body));
    common::send_signal(gw.pid(), libc::SIGKILL);
    let mut gw = gw;
    assert!(gw.wait_exit(Duration::from_secs(5)).is_some());
    drop(gw);

    let gw = Gateway::start(&cfg, Driver::Uring);
    let secret = made["key"].as_str().unwrap();
    assert_eq!(chat(&gw, secret, "gpt-4o-mini").status, 200);
    assert_eq!(
        chat(&gw, blocked["key"].as_str().unwrap(), "gpt-4o-mini").status,
        401
    );
    let info = ok(gw.admin_call(
        "GET",
        &format!("/key/info?key={}", made["key_id"].as_str().unwrap()),
        "",
    ));
    assert_eq!(info["info"]["team_id"], "t1");
}

/// A key's guardrail names and cache setting, and a team's guardrail names, through the binary:
/// set, read back (info, list, team info), changed, cleared, and kept across a restart.
#[test]
fn guardrails_and_cache_are_kept_per_key_and_team() {
    use serde_json::json;
    let up = mock();
    let dir = common::TempDir::new();
    let db = dir.0.join("shardgate.db");
    let cfg = managed_config(&up.base_url(), "").replacen(
        "providers:",
        &format!("store: {{ path: {} }}\nproviders:", db.display()),
        1,
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let team = ok(gw.admin_call(
        "POST",
        "/team/new",
        r#"{"team_id":"t1","guardrails":["pii","toxicity"]}"#,
    ));
    assert_eq!(team["guardrails"], json!(["pii", "toxicity"]));
    let made = ok(gw.admin_call(
        "POST",
        "/key/generate",
        r#"{"team_id":"t1","guardrails":["jailbreak","pii","jailbreak"],
            "cache":{"ttl_s":120,"scope":"team","store_length":true}}"#,
    ));
    let id = made["key_id"].as_str().unwrap().to_owned();
    assert_eq!(made["guardrails"], json!(["jailbreak", "pii"]));
    let cache = json!({"ttl_s": 120, "scope": "team", "store_length": true});
    assert_eq!(made["cache"], cache);
    let info = |gw: &Gateway| ok(gw.admin_call("GET", &format!("/key/info?key={id}"), ""));
    assert_eq!(info(&gw)["info"]["cache"], cache);
    let list = ok(gw.admin_call("GET", "/key/list?team_id=t1", ""));
    assert_eq!(list["keys"][0]["guardrails"], json!(["jailbreak", "pii"]));
    let t = ok(gw.admin_call("GET", "/team/info?team_id=t1", ""));
    assert_eq!(t["team_info"]["guardrails"], json!(["pii", "toxicity"]));
    assert_eq!(t["keys"][0]["cache"], cache);

    // Refusals name the field and change nothing.
    for (body, param) in [
        (r#"{"guardrails":["no spaces"]}"#, "guardrails"),
        (r#"{"cache":{"scope":"shared"}}"#, "cache"),
        (r#"{"cache":{"ttl_s":0}}"#, "cache"),
        (r#"{"cache":"always"}"#, "cache"),
    ] {
        let r = gw.admin_call("POST", "/key/generate", body);
        assert_eq!(
            (r.status, code(&r)),
            (400, "invalid_field".into()),
            "{body}"
        );
        assert_eq!(r.json()["error"]["param"], param, "{body}");
    }
    let r = gw.admin_call("POST", "/team/new", r#"{"guardrails":"pii"}"#);
    assert_eq!(r.status, 400, "{}", r.text());

    let upd = ok(gw.admin_call(
        "POST",
        "/key/update",
        &format!(r#"{{"key":"{id}","cache":false}}"#),
    ));
    assert_eq!(
        (&upd["cache"], &upd["guardrails"]),
        (&json!(false), &json!(["jailbreak", "pii"]))
    );
    ok(gw.admin_call(
        "POST",
        "/team/update",
        r#"{"team_id":"t1","guardrails":["pii.v2"]}"#,
    ));
    drop(gw);

    let gw = Gateway::start(&cfg, Driver::Uring);
    let kept = info(&gw)["info"].clone();
    assert_eq!(
        (&kept["cache"], &kept["guardrails"]),
        (&json!(false), &json!(["jailbreak", "pii"]))
    );
    let t = ok(gw.admin_call("GET", "/team/info?team_id=t1", ""));
    assert_eq!(t["team_info"]["guardrails"], json!(["pii.v2"]));
    let cleared = ok(gw.admin_call(
        "POST",
        "/key/update",
        &format!(r#"{{"key":"{id}","cache":null,"guardrails":null}}"#),
    ));
    assert_eq!(
        (&cleared["cache"], &cleared["guardrails"]),
        (&json!(null), &json!([]))
    );
    let t = ok(gw.admin_call(
        "POST",
        "/team/update",
        r#"{"team_id":"t1","guardrails":null}"#,
    ));
    assert_eq!(t["guardrails"], json!([]));
}

/// A database written by a newer shardgate is refused at start, untouched, with a clear message.
#[test]
fn a_newer_schema_is_refused() {
    let up = mock();
    let dir = common::TempDir::new();
    let db = dir.0.join("future.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let cfg = managed_config(&up.base_url(), "").replacen(
        "providers:",
        &format!("store: {{ path: {} }}\nproviders:", db.display()),
        1,
    );
    let err = Gateway::try_start(&cfg, Driver::Uring, &[])
        .err()
        .expect("start refused");
    assert!(err.contains("schema version 99"), "{err}");
    assert!(err.contains("upgrade shardgate"), "{err}");
    let c = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, 99, "left untouched");
}

/// A key blocked while clients hammer both shards stops working everywhere within a second;
/// prints the revocation latency (last success after the block was acknowledged) p50/p99.
#[test]
fn revocation_reaches_every_shard_quickly() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let up = mock();
    let cfg = managed_config(&up.base_url(), "  shards: 2\n").replacen("  shards: 1\n", "", 1);
    let gw = Gateway::start(&cfg, Driver::Uring);
    let made = ok(gw.admin_call("POST", "/key/generate", r#"{"key_alias":"hammered"}"#));
    let secret = made["key"].as_str().unwrap().to_owned();
    let block = format!(r#"{{"key":"{}"}}"#, made["key_id"].as_str().unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // (started, ok) of every request, from 16 keep-alive connections spread over the shards,
    // and the shards that served (the request id says which: `req_` + 8 hex + shard).
    let log: Arc<Mutex<Vec<(Instant, bool)>>> = Arc::default();
    let shards: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (stop, log, secret, api) = (stop.clone(), log.clone(), secret.clone(), gw.api);
            let shards = shards.clone();
            std::thread::spawn(move || {
                let mut c = http::Client::connect(api);
                let auth = format!("Bearer {secret}");
                let body =
                    br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
                while !stop.load(Ordering::SeqCst) {
                    let at = Instant::now();
                    c.send(
                        "POST",
                        "/v1/chat/completions",
                        &[("authorization", &auth)],
                        body,
                    );
                    let r = c.read_response();
                    log.lock().unwrap().push((at, r.status == 200));
                    if let Some(shard) = r.shard() {
                        shards.lock().unwrap().insert(shard.to_owned());
                    }
                    if r.header("connection") == Some("close") {
                        c = http::Client::connect(api);
                    }
                }
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(3), || shards.lock().unwrap().len() == 2),
        "the load reaches both shards: {:?}",
        shards.lock().unwrap()
    );
    // Per block: the last success that started after the block was sent, and after its reply.
    let (mut from_send, mut from_ack) = (Vec::new(), Vec::new());
    let recent_ok = || log.lock().unwrap().iter().rev().take(16).all(|e| e.1);
    let last_ok = |after: Instant| {
        let log = log.lock().unwrap();
        let last = log
            .iter()
            .filter(|(at, ok)| *ok && *at >= after)
            .map(|(at, _)| *at)
            .max();
        last.map_or(Duration::ZERO, |t| t - after)
    };
    for _ in 0..20 {
        assert!(eventually(Duration::from_secs(2), recent_ok));
        let sent = Instant::now();
        let r = gw.admin_call("POST", "/key/block", &block);
        assert_eq!(r.status, 200);
        let acked = Instant::now();
        std::thread::sleep(Duration::from_millis(150));
        from_send.push(last_ok(sent));
        from_ack.push(last_ok(acked));
        ok(gw.admin_call("POST", "/key/unblock", &block));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    for (what, lags) in [("sent", &mut from_send), ("acknowledged", &mut from_ack)] {
        lags.sort();
        let q = |p: usize| lags[(lags.len() * p / 100).min(lags.len() - 1)].as_micros();
        eprintln!(
            "revocation over {} blocks, last success started after the block was {what}: p50 {} µs, p99 {} µs, max {} µs",
            lags.len(),
            q(50),
            q(99),
            q(100)
        );
        assert!(
            *lags.last().unwrap() < Duration::from_secs(1),
            "{what}: {lags:?}"
        );
    }
}

/// Two gateways on one store file: a key made or blocked through one reaches the other
/// through the store (control polls its `data_version`).
#[test]
fn another_process_writing_the_store_is_noticed() {
    let up = mock();
    let dir = common::TempDir::new();
    let db = dir.0.join("shared.db");
    let cfg = managed_config(&up.base_url(), "").replacen(
        "providers:",
        &format!("store: {{ path: {} }}\nproviders:", db.display()),
        1,
    );
    let (a, b) = (
        Gateway::start(&cfg, Driver::Uring),
        Gateway::start(&cfg, Driver::Uring),
    );
    let made = ok(a.admin_call("POST", "/key/generate", r#"{"key_alias":"shared"}"#));
    let secret = made["key"].as_str().unwrap().to_owned();
    let t0 = Instant::now();
    assert!(eventually(Duration::from_secs(3), || chat(
        &b,
        &secret,
        "gpt-4o-mini"
    )
    .status
        == 200));
    let seen_in = t0.elapsed();
    let block = format!(r#"{{"key":"{}"}}"#, made["key_id"].as_str().unwrap());
    ok(b.admin_call("POST", "/key/block", &block));
    assert!(eventually(Duration::from_secs(3), || chat(
        &a,
        &secret,
        "gpt-4o-mini"
    )
    .status
        == 401));
    eprintln!(
        "a key made in one process worked in the other after {} ms",
        seen_in.as_millis()
    );
}
