//! Limits through the binary: 429s in each ingress's shape with `Retry-After`, the rate-limit
//! headers on every response, limits from the alias, the YAML key and the admin API, token
//! reservations that settle to real usage, concurrency, and the bound across shards.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Driver, Gateway, TEAM_A, http, mock};

fn with_models(base: &str, extra_server: &str, models: &str) -> String {
    common::config(
        base,
        &format!("  master_key: {{ env: MASTER_KEY }}\n{extra_server}"),
    )
    .replacen("models:\n", &format!("models:\n{models}"), 1)
}

fn chat_as(gw: &Gateway, key: &str, model: &str, extra: &str) -> http::Response {
    gw.chat_as(
        key,
        &format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#),
    )
}

fn admin_chat(gw: &Gateway, model: &str) -> http::Response {
    chat_as(gw, common::ADMIN, model, "")
}

const LIMITED: &str = "  limited:\n    limits: { rpm: 3 }\n    targets:\n      - { provider: up, model: upstream-mini }\n";

fn an_alias_limit_refuses_with_429_and_headers(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&with_models(&up.base_url(), "", LIMITED), driver);
    for left in [2, 1, 0] {
        let r = admin_chat(&gw, "limited");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(
            r.header("x-ratelimit-remaining-requests"),
            Some(left.to_string().as_str())
        );
        let reset = r.header("x-ratelimit-reset-requests").unwrap();
        assert!(reset.ends_with('s'), "{reset}");
    }
    let r = admin_chat(&gw, "limited");
    assert_eq!(r.status, 429);
    let j = r.json();
    assert_eq!(j["error"]["code"], "rate_limit_exceeded");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("model rate limit \"limited\"") && msg.contains("3 requests per minute"),
        "{msg}"
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert!(r.header("retry-after-ms").is_some());
    assert_eq!(
        up.stats().requests,
        3,
        "the refused request never reached the upstream"
    );
    // The Anthropic ingress: its error shape and its header names.
    let auth = format!("Bearer {}", common::ADMIN);
    let body =
        br#"{"model":"limited","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", &auth[7..]),
            ("anthropic-version", "2023-06-01"),
        ],
        body,
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    assert_eq!(r.header("anthropic-ratelimit-requests-limit"), Some("3"));
    assert!(
        r.header("anthropic-ratelimit-requests-reset")
            .unwrap()
            .ends_with('Z')
    );
    gw.wait_metric(r#"shardgate_errors_total{kind="gateway_rate_limited"} 2"#);
    // Other aliases are not limited by it.
    assert_eq!(admin_chat(&gw, "gpt-4o-mini").status, 200);
}

fn key_limits_from_yaml_and_the_admin_api(driver: Driver) {
    let up = mock();
    let cfg = with_models(&up.base_url(), "", "").replacen(
        "    models: [gpt-4o-mini, text-embedding-3-small]\n",
        "    models: [gpt-4o-mini, text-embedding-3-small]\n    rpm_limit: 2\n",
        1,
    );
    let gw = Gateway::start(&cfg, driver);
    assert_eq!(chat_as(&gw, TEAM_A, "gpt-4o-mini", "").status, 200);
    assert_eq!(chat_as(&gw, TEAM_A, "gpt-4o-mini", "").status, 200);
    let r = chat_as(&gw, TEAM_A, "gpt-4o-mini", "");
    assert_eq!(r.status, 429);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("key rate limit \"team-a\""), "{msg}");
    assert_eq!(
        chat_as(&gw, common::ADMIN, "gpt-4o-mini", "").status,
        200,
        "another key is not limited"
    );

    // A key made through the API, with a per-model limit; raising the limit takes effect at once.
    let made = gw
        .admin_call(
            "POST",
            "/key/generate",
            r#"{"key_alias":"svc","rpm_limit":100,"model_rpm_limit":{"gpt-4o-mini":1}}"#,
        )
        .json();
    let (secret, id) = (
        made["key"].as_str().unwrap().to_owned(),
        made["key_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini", "").status, 200);
    let r = chat_as(&gw, &secret, "gpt-4o-mini", "");
    assert_eq!(r.status, 429);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("key's model rate limit"), "{msg}");
    assert_eq!(
        chat_as(&gw, &secret, "restricted", "").status,
        200,
        "the limit is per model"
    );
    let info = gw
        .admin_call("GET", &format!("/key/info?key={id}"), "")
        .json();
    let state = info["info"]["limit_state"].as_array().unwrap().clone();
    let rpm = state
        .iter()
        .find(|s| s["limit"] == "rpm")
        .expect("the key's rpm in its info");
    assert_eq!(rpm["capacity"], 100);
    assert!(
        rpm["used"].as_u64().unwrap() >= 2 && rpm["resets_at"].is_string(),
        "{rpm}"
    );
    assert!(
        state.iter().any(|s| s["limit"] == "model:gpt-4o-mini:rpm"),
        "{state:?}"
    );
    let body = format!(r#"{{"key":"{id}","model_rpm_limit":{{"gpt-4o-mini":5}}}}"#);
    assert_eq!(gw.admin_call("POST", "/key/update", &body).status, 200);
    assert_eq!(chat_as(&gw, &secret, "gpt-4o-mini", "").status, 200);
}

fn a_team_limit_binds_all_its_keys(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&with_models(&up.base_url(), "", ""), driver);
    assert_eq!(
        gw.admin_call("POST", "/team/new", r#"{"team_id":"t","rpm_limit":3}"#)
            .status,
        200
    );
    let keys: Vec<String> = (0..2)
        .map(|_| {
            gw.admin_call("POST", "/key/generate", r#"{"team_id":"t"}"#)
                .json()["key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let statuses: Vec<u16> = (0..4)
        .map(|i| chat_as(&gw, &keys[i % 2], "gpt-4o-mini", "").status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
}

/// A token limit reserves prompt + max_tokens up front and settles to what was used.
fn tokens_are_reserved_then_settled(driver: Driver) {
    let up = mock();
    let models = "  tok:\n    limits: { tpm: 1000 }\n    targets:\n      - { provider: up, model: upstream-mini }\n";
    let gw = Gateway::start(&with_models(&up.base_url(), "", models), driver);
    // 900 reserved for output, but the mock answers with a handful of tokens.
    let r = chat_as(&gw, common::ADMIN, "tok", r#","max_tokens":900"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let after_first: u64 = r
        .header("x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        after_first < 100,
        "the reservation shows while the request runs: {after_first}"
    );
    let r = chat_as(&gw, common::ADMIN, "tok", r#","max_tokens":900"#);
    assert_eq!(
        r.status,
        200,
        "the first settled to its real usage: {}",
        r.text()
    );
    let r = chat_as(&gw, common::ADMIN, "tok", r#","max_tokens":5000"#);
    assert_eq!(r.status, 429, "more than the limit can never be reserved");
    assert!(r.text().contains("1000 tokens per minute"), "{}", r.text());
}

fn concurrency_is_limited(driver: Driver) {
    let up = mock();
    let slow = format!("{}/mock/latency_ms=400", up.base_url());
    let models = "  par:\n    limits: { max_parallel_requests: 2 }\n    targets:\n      - { provider: up, model: upstream-mini }\n";
    let gw = Arc::new(Gateway::start(&with_models(&slow, "", models), driver));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let gw = gw.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(i * 50));
                admin_chat(&gw, "par")
            })
        })
        .collect();
    let mut statuses: Vec<u16> = threads
        .into_iter()
        .map(|t| t.join().unwrap().status)
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(admin_chat(&gw, "par").status, 200, "the slots came back");
}

both_drivers!(
    an_alias_limit_refuses_with_429_and_headers,
    key_limits_from_yaml_and_the_admin_api,
    a_team_limit_binds_all_its_keys,
    tokens_are_reserved_then_settled,
    concurrency_is_limited,
);

/// Many clients on both shards against one limit: never more than the limit is admitted, and
/// fewer only by what a shard still holds (README: `(shards − 1) × lease`). Prints the count.
#[test]
fn the_limit_holds_across_shards() {
    let up = mock();
    let models = "  hot:\n    limits: { rph: 300 }\n    targets:\n      - { provider: up, model: upstream-mini }\n";
    let cfg = with_models(&up.base_url(), "  shards: 2\n", models).replacen("  shards: 1\n", "", 1);
    let gw = Gateway::start(&cfg, Driver::Uring);
    let (ok, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let shards: Arc<std::sync::Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (ok, refused, shards, api) = (ok.clone(), refused.clone(), shards.clone(), gw.api);
            std::thread::spawn(move || {
                let mut c = http::Client::connect(api);
                let auth = format!("Bearer {}", common::ADMIN);
                let body = br#"{"model":"hot","messages":[{"role":"user","content":"hi"}]}"#;
                let mut mine_refused = 0;
                while mine_refused < 20 {
                    c.send(
                        "POST",
                        "/v1/chat/completions",
                        &[("authorization", &auth)],
                        body,
                    );
                    let r = c.read_response();
                    if let Some(s) = r.shard() {
                        shards.lock().unwrap().insert(s.to_owned());
                    }
                    match r.status {
                        200 => ok.fetch_add(1, Ordering::SeqCst),
                        429 => {
                            mine_refused += 1;
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                        other => panic!("status {other}: {}", r.text()),
                    };
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ok = ok.load(Ordering::SeqCst);
    eprintln!(
        "limit 300/hour across {:?} shards, 16 clients: {ok} admitted, {} refused",
        shards.lock().unwrap(),
        refused.load(Ordering::SeqCst)
    );
    assert_eq!(shards.lock().unwrap().len(), 2, "both shards served");
    assert!(ok <= 300, "{ok} admitted past the limit");
    // The largest lease is capacity / (4 × shards) = 37.
    assert!(ok >= 300 - 37, "{ok} admitted: more than a lease short");
    assert_eq!(up.stats().requests, ok);
}

/// `end_users:` limits count each end user (`user` in the body) apart, on every shard.
#[test]
fn end_users_are_limited_one_by_one() {
    let up = mock();
    let cfg = with_models(&up.base_url(), "  shards: 2\n", "")
        .replacen("  shards: 1\n", "", 1)
        .replacen("providers:", "end_users: { rpm_limit: 2 }\nproviders:", 1);
    let gw = Gateway::start(&cfg, Driver::Uring);
    let as_user = |u: &str| {
        chat_as(
            &gw,
            common::ADMIN,
            "gpt-4o-mini",
            &format!(r#","user":"{u}""#),
        )
    };
    assert_eq!(as_user("alice").status, 200);
    assert_eq!(as_user("alice").status, 200);
    let r = as_user("alice");
    assert_eq!(r.status, 429);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("end user rate limit \"alice\""), "{msg}");
    assert_eq!(
        as_user("bob").status,
        200,
        "another user has their own count"
    );
    for _ in 0..3 {
        assert_eq!(
            admin_chat(&gw, "gpt-4o-mini").status,
            200,
            "no user: no per-user limit"
        );
    }
}
