//! Budgets, cost and the spend ledger through the binary: a hard budget holds under hundreds
//! of concurrent requests, the ledger's totals equal what the upstream reported (to the token
//! and the cent) over a mixed run, and the spend API and headers report it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Driver, Gateway, eventually, http, mock};
use serde_json::Value;

/// A config whose `gpt-4o-mini` target is priced at $1,000 / $2,000 per million tokens (a
/// tenth of a cent a prompt token), with the store (and so the ledger) in `dir`.
fn priced(base: &str, dir: &std::path::Path, extra_server: &str) -> String {
    common::config(base, &format!("  master_key: {{ env: MASTER_KEY }}\n{extra_server}"))
        .replacen(
            "      - { provider: up, model: upstream-mini }",
            "      - { provider: up, model: upstream-mini, price: { input: 1000, output: 2000, cached_input: 100 } }",
            1,
        )
        .replacen("providers:", &format!("store: {{ path: {} }}\nproviders:", dir.join("s.db").display()), 1)
}

fn chat(gw: &Gateway, key: &str, body: &str) -> http::Response {
    gw.chat_as(key, body)
}

fn report(gw: &Gateway) -> Value {
    let today = common::today();
    let r = gw.admin_call(
        "GET",
        &format!("/global/spend/report?start_date={today}&end_date={today}&group_by=key"),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Hundreds of concurrent requests against a small hard budget: what they cost together
/// never passes it, the refused get 429 `budget_exceeded` naming when it resets.
#[test]
fn a_hard_budget_holds_under_concurrency() {
    let up = mock();
    let dir = common::TempDir::new();
    let gw = Arc::new(Gateway::start(
        &priced(&up.base_url(), &dir.0, "  shards: 2\n").replacen("  shards: 1\n", "", 1),
        Driver::Uring,
    ));
    let made = gw
        .admin_call(
            "POST",
            "/key/generate",
            r#"{"key_alias":"capped","max_budget":0.5,"budget_duration":"30d"}"#,
        )
        .json();
    let secret = made["key"].as_str().unwrap().to_owned();
    let id = made["key_id"].as_str().unwrap().to_owned();
    let threads: Vec<_> = (0..200)
        .map(|_| {
            let (gw, secret) = (gw.clone(), secret.clone());
            std::thread::spawn(move || {
                let r = chat(&gw, &secret, r#"{"model":"gpt-4o-mini","max_tokens":40,"messages":[{"role":"user","content":"hello there"}]}"#);
                (r.status, r.json())
            })
        })
        .collect();
    let results: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(ok + refused.len(), 200);
    assert!(ok > 0 && !refused.is_empty(), "{ok} served");
    assert_eq!(refused[0]["error"]["code"], "budget_exceeded");
    let msg = refused[0]["error"]["message"].as_str().unwrap();
    assert!(msg.contains("$0.50") && msg.contains("resets at"), "{msg}");
    // What the served ones cost, from their usage at the target's price.
    let spent: f64 = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, j)| common::cost(j, 1000.0, 2000.0))
        .sum();
    eprintln!(
        "budget $0.50: {ok} served for ${spent:.4}, {} refused",
        refused.len()
    );
    assert!(spent <= 0.5 + 1e-9, "spent ${spent}");
    // The ledger saw every request, and the key's spend is what they cost.
    assert!(eventually(Duration::from_secs(3), || {
        let j = gw
            .admin_call("GET", &format!("/key/info?key={id}"), "")
            .json();
        (j["info"]["spend"].as_f64().unwrap_or(0.0) - spent).abs() < 1e-9
    }));
}

/// A mixed run (plain, streamed, translated, cached and reasoning tokens, a retried request,
/// a cancelled stream, an error): the ledger's totals equal what the upstream reported.
#[test]
fn the_ledger_adds_up_to_what_the_upstream_reported() {
    let (up, flaky) = (mock(), mock());
    let dir = common::TempDir::new();
    let flaky_url = format!("{}/mock/status=503", flaky.base_url());
    let cfg = priced(&up.base_url(), &dir.0, "")
        .replacen(
            "providers:\n",
            &format!("providers:\n  flaky:\n    protocol: openai\n    base_url: {flaky_url}/v1\n  claude:\n    protocol: anthropic\n    base_url: {}\n    api_key: {{ env: UPSTREAM_KEY }}\n", up.base_url()),
            1,
        )
        .replacen(
            "models:\n",
            "models:\n  retried:\n    strategy: priority\n    retry: { attempts: 2, backoff_ms: 0, max_backoff_ms: 1 }\n    targets:\n      - { provider: flaky, model: x, price: { input: 1000, output: 2000 } }\n      - { provider: up, model: upstream-mini, price: { input: 1000, output: 2000 } }\n  sonnet:\n    targets:\n      - { provider: claude, model: claude-sonnet-4-5, price: { input: 1000, output: 2000, cached_input: 100, cache_write: 1250 } }\n",
            1,
        );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let key = common::ADMIN;
    let mut want_in = 0u64;
    let mut want_out = 0u64;
    let mut want_cost = 0f64;
    let mut count = |u: &Value, cached: u64, cache_price: f64| {
        let (i, o) = (
            u["prompt_tokens"].as_u64().unwrap(),
            u["completion_tokens"].as_u64().unwrap(),
        );
        want_in += i;
        want_out += o;
        want_cost +=
            ((i - cached) as f64 * 1000.0 + cached as f64 * cache_price + o as f64 * 2000.0) / 1e6;
    };
    // Plain, with cached and reasoning tokens reported by the upstream.
    for body in [
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"one"}]}"#,
        r#"{"model":"gpt-4o-mini","mock":{"cached_tokens":4},"messages":[{"role":"user","content":"two two"}]}"#,
    ] {
        let r = chat(&gw, key, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let u = r.json()["usage"].clone();
        let cached = u["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0);
        count(&u, cached, 100.0);
        let header: f64 = r.header("x-shardgate-cost").unwrap().parse().unwrap();
        assert!(header > 0.0);
    }
    // Retried: the first target fails, the second serves; one row, the served target's usage.
    let r = chat(
        &gw,
        key,
        r#"{"model":"retried","messages":[{"role":"user","content":"three"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    count(&r.json()["usage"], 0, 0.0);
    // Streamed, with usage in the last chunk.
    let auth = format!("Bearer {key}");
    let mut c = http::Client::connect(gw.api);
    c.send("POST", "/v1/chat/completions", &[("authorization", &auth)], br#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"four"}]}"#);
    assert_eq!(c.read_head().unwrap().0, 200);
    let (chunks, _) = c.read_stream();
    let text: Vec<u8> = chunks.into_iter().flat_map(|(_, b)| b).collect();
    let last_usage = http::sse_data(&text)
        .into_iter()
        .rfind(|d| d.contains("\"usage\":{"))
        .expect("a usage chunk");
    let v: Value = serde_json::from_str(&last_usage).unwrap();
    count(&v["usage"], 0, 0.0);
    // Translated: the Anthropic ingress to an OpenAI upstream and back is counted once.
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[("x-api-key", key), ("anthropic-version", "2023-06-01")],
        br#"{"model":"gpt-4o-mini","max_tokens":32,"messages":[{"role":"user","content":"five"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let u = r.json()["usage"].clone();
    let (i, o) = (
        u["input_tokens"].as_u64().unwrap(),
        u["output_tokens"].as_u64().unwrap(),
    );
    want_in += i;
    want_out += o;
    want_cost += (i as f64 * 1000.0 + o as f64 * 2000.0) / 1e6;
    // A 404 costs nothing but is a row too.
    assert_eq!(
        chat(&gw, key, r#"{"model":"nope","messages":[]}"#).status,
        404
    );
    // A stream the client leaves: its row is estimated from what was relayed, and flagged.
    let mut c = http::Client::connect(gw.api);
    c.send("POST", "/v1/chat/completions", &[("authorization", &auth)], br#"{"model":"gpt-4o-mini","stream":true,"mock":{"chunks":40,"interval_ms":25},"messages":[{"role":"user","content":"six"}]}"#);
    assert_eq!(c.read_head().unwrap().0, 200);
    let _ = c.read_chunk();
    drop(c);
    let rows_expected = 7;
    assert!(
        eventually(Duration::from_secs(3), || {
            let logs = gw.admin_call("GET", "/spend/logs?limit=100", "").json();
            logs.as_array().map_or(0, |a| a.len()) == rows_expected
        }),
        "{}",
        gw.admin_call("GET", "/spend/logs?limit=100", "").text()
    );
    let logs = gw.admin_call("GET", "/spend/logs?limit=100", "").json();
    let logs = logs.as_array().unwrap();
    let cut: Vec<&Value> = logs.iter().filter(|r| r["estimated"] == true).collect();
    assert_eq!(cut.len(), 1, "the cancelled stream, flagged");
    assert_eq!(cut[0]["status"], 499);
    let sum = |rows: &mut dyn Iterator<Item = &Value>| {
        rows.fold((0u64, 0u64, 0f64), |acc, r| {
            let spend = r["spend"].as_f64().unwrap_or(0.0);
            (
                acc.0 + r["prompt_tokens"].as_u64().unwrap(),
                acc.1 + r["completion_tokens"].as_u64().unwrap(),
                acc.2 + spend,
            )
        })
    };
    let total = sum(&mut logs.iter().filter(|r| r["estimated"] != true));
    // The rollups (what reports read) hold the same, the estimated row included.
    let all = sum(&mut logs.iter());
    let rolled = report(&gw);
    let rolled = rolled
        .as_array()
        .unwrap()
        .iter()
        .fold((0u64, 0u64, 0f64), |acc, r| {
            (
                acc.0 + r["prompt_tokens"].as_u64().unwrap(),
                acc.1 + r["completion_tokens"].as_u64().unwrap(),
                acc.2 + r["spend"].as_f64().unwrap(),
            )
        });
    assert_eq!((rolled.0, rolled.1), (all.0, all.1));
    assert!((rolled.2 - all.2).abs() < 1e-9);
    eprintln!(
        "ledger: {} in / {} out / ${:.6}; upstream reported {want_in} / {want_out} / ${want_cost:.6}",
        total.0, total.1, total.2
    );
    assert_eq!((total.0, total.1), (want_in, want_out), "to the token");
    assert!(
        (total.2 - want_cost).abs() < 0.005,
        "to the cent: ${} vs ${want_cost}",
        total.2
    );
    assert!((total.2 - want_cost).abs() < 1e-9, "exactly, in fact");
    // The CSV export has a header and one line per row.
    let csv = gw.admin_call("GET", "/spend/logs?limit=100&format=csv", "");
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert_eq!(csv.text().trim_end().lines().count(), rows_expected + 1);
}

/// A soft budget crossed is said once (log, metric, webhook) and the requests go on.
#[test]
fn a_soft_budget_alerts_once_and_serves_on() {
    let up = mock();
    let dir = common::TempDir::new();
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let got = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = hook.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 4096];
        let mut n = 0;
        while !String::from_utf8_lossy(&buf[..n]).contains("}") {
            match s.read(&mut buf[n..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
        }
        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let extra = format!("  alert_webhook: http://{hook_addr}/alerts\n");
    let gw = Gateway::start(&priced(&up.base_url(), &dir.0, &extra), Driver::Uring);
    let made = gw
        .admin_call(
            "POST",
            "/key/generate",
            r#"{"soft_budget":0.05,"budget_duration":"1d"}"#,
        )
        .json();
    let secret = made["key"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        let r = chat(
            &gw,
            &secret,
            r#"{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hello"}]}"#,
        );
        assert_eq!(r.status, 200, "a soft budget refuses nothing: {}", r.text());
    }
    gw.wait_metric("shardgate_soft_budget_alerts_total 1");
    let posted = got.join().unwrap();
    assert!(posted.starts_with("POST /alerts HTTP/1.1"), "{posted}");
    assert!(posted.contains("soft_budget_crossed"), "{posted}");
    assert!(gw.stderr.lock().unwrap().contains("soft budget key:"));
    assert_eq!(
        chat(
            &gw,
            &secret,
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#
        )
        .status,
        200
    );
    std::thread::sleep(Duration::from_millis(500));
    gw.wait_metric("shardgate_soft_budget_alerts_total 1");
}

/// Waits, if the current minute has under 15 s left, for the next one (a test that counts a
/// per-minute limit across a restart must not see the window turn).
fn within_one_minute() {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let left = 60_000 - ms % 60_000;
    if left < 15_000 {
        std::thread::sleep(Duration::from_millis(left + 50));
    }
}

/// The `limit_state` entry of the key's limit whose name starts with `limit`.
fn limit_used(gw: &Gateway, id: &str, limit: &str) -> f64 {
    let j = gw
        .admin_call("GET", &format!("/key/info?key={id}"), "")
        .json();
    let state = j["info"]["limit_state"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    state
        .iter()
        .find(|s| s["limit"].as_str().is_some_and(|l| l.starts_with(limit)))
        .and_then(|s| s["used"].as_f64())
        .unwrap_or_else(|| panic!("no {limit} in {j}"))
}

/// Limit and budget state survives a restart: after `kill -9` the key's and the end user's
/// per-minute counts come back from the saved counters, and after a clean stop with every saved
/// counter deleted the key's budget still comes back whole from the ledger.
#[test]
fn limit_state_survives_a_restart() {
    within_one_minute();
    let up = mock();
    let dir = common::TempDir::new();
    let cfg = priced(&up.base_url(), &dir.0, "").replacen(
        "providers:",
        "end_users: { rpm_limit: 2 }\nproviders:",
        1,
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let made = gw
        .admin_call(
            "POST",
            "/key/generate",
            r#"{"rpm_limit":3,"max_budget":10.0,"budget_duration":"30d"}"#,
        )
        .json();
    let secret = made["key"].as_str().unwrap().to_owned();
    let id = made["key_id"].as_str().unwrap().to_owned();
    let as_user = |gw: &Gateway, user: &str| {
        chat(
            gw,
            &secret,
            &format!(
                r#"{{"model":"gpt-4o-mini","max_tokens":8,"user":"{user}","messages":[{{"role":"user","content":"hello"}}]}}"#
            ),
        )
    };
    assert_eq!(as_user(&gw, "carol").status, 200);
    assert_eq!(as_user(&gw, "carol").status, 200);
    let spent = limit_used(&gw, &id, "budget");
    assert!(spent > 0.0);
    assert_eq!(limit_used(&gw, &id, "rpm"), 2.0);
    // Counters are saved every second; then nothing is left to a clean stop.
    std::thread::sleep(Duration::from_millis(1500));
    common::send_signal(gw.pid(), libc::SIGKILL);
    let mut gw = gw;
    assert!(gw.wait_exit(Duration::from_secs(5)).is_some());
    drop(gw);

    let gw = Gateway::start(&cfg, Driver::Uring);
    assert_eq!(
        limit_used(&gw, &id, "rpm"),
        2.0,
        "the key's minute, restored"
    );
    assert!((limit_used(&gw, &id, "budget") - spent).abs() < 1e-9);
    let r = as_user(&gw, "carol");
    assert_eq!(r.status, 429, "carol's two of two, restored: {}", r.text());
    assert!(r.text().contains("end user rate limit"), "{}", r.text());
    assert_eq!(as_user(&gw, "dave").status, 200, "the key's third of three");
    let r = as_user(&gw, "erin");
    assert_eq!(r.status, 429);
    assert!(r.text().contains("key rate limit"), "{}", r.text());
    // What the budget has taken: the three served requests' cost, and any slice still leased
    // to the shard (given back at a clean stop or counted, never lost).
    let spent = limit_used(&gw, &id, "budget");
    common::send_signal(gw.pid(), libc::SIGTERM);
    let mut gw = gw;
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some());
    drop(gw);

    // Without any saved counter, the budget comes back from the ledger's rollups.
    let db = rusqlite::Connection::open(dir.0.join("s.db")).unwrap();
    db.execute("DELETE FROM limit_usage", []).unwrap();
    drop(db);
    let gw = Gateway::start(&cfg, Driver::Uring);
    let ledger = gw
        .admin_call("GET", &format!("/key/info?key={id}"), "")
        .json()["info"]["spend"]
        .as_f64()
        .unwrap();
    assert!(
        ledger > 0.0 && ledger <= spent + 1e-9,
        "${ledger} of ${spent}"
    );
    let used = limit_used(&gw, &id, "budget");
    assert!(
        (used - ledger).abs() < 1e-9,
        "${used} restored, ${ledger} spent"
    );
    assert_eq!(
        limit_used(&gw, &id, "rpm"),
        0.0,
        "the minute's count was deleted"
    );
}
