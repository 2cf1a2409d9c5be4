//! Hot reload through the binary: `POST /config/reload` and SIGHUP install a new generation
//! on every shard; a config with problems is refused whole (every problem, with its path) and
//! the current one keeps serving; streams and load in flight across reloads see no error.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::http::{self, Client};
use common::{Driver, Gateway, TEAM_A, eventually, mock};

fn config_with(base: &str, extra_models: &str) -> String {
    // Two shards, so an install has more than one to prepare and commit.
    let cfg = common::config(base, "  master_key: { env: MASTER_KEY }\n  shards: 2\n");
    let cfg = cfg.replacen("  shards: 1\n", "", 1);
    cfg.replacen("models:\n", &format!("models:\n{extra_models}"), 1)
}

fn chat(gw: &Gateway, model: &str) -> http::Response {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let auth = format!("Bearer {TEAM_A}");
    http::request(
        gw.api,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

const EXTRA: &str = "  extra:\n    targets:\n      - { provider: up, model: upstream-extra }\n";

fn reload_adds_an_alias_and_refuses_a_broken_config(driver: Driver) {
    let up = mock();
    let cfg = config_with(&up.base_url(), "");
    let gw = Gateway::start(&cfg, driver);
    // team-a may use gpt-4o-mini only; the admin key is unrestricted.
    let admin_chat = |model: &str| {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        http::request(
            gw.api,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {}", common::ADMIN))],
            body.as_bytes(),
        )
    };
    assert_eq!(admin_chat("extra").status, 404);
    assert_eq!(chat(&gw, "gpt-4o-mini").status, 200);
    std::fs::write(gw.config_path(), config_with(&up.base_url(), EXTRA)).unwrap();
    let r = gw.admin_call("POST", "/config/reload", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "reloaded");
    assert_eq!(j["generation"], 2);
    assert_eq!(admin_chat("extra").status, 200);
    assert_eq!(chat(&gw, "gpt-4o-mini").status, 200);
    // Series recorded under the first generation and the second add up (stable label ids).
    gw.wait_metric(r#"shardgate_requests_total{model="gpt-4o-mini",provider="up",status="200"} 2"#);
    gw.wait_metric(r#"shardgate_requests_total{model="extra",provider="up",status="200"} 1"#);

    // Two problems: both reported with their paths; nothing changes.
    let broken = config_with(&up.base_url(), EXTRA)
        .replace(
            "provider: up, model: upstream-extra",
            "provider: nope, model: x",
        )
        .replace("retry: { attempts: 1 }", "retry: { attempts: -3 }");
    std::fs::write(gw.config_path(), broken).unwrap();
    let r = gw.admin_call("POST", "/config/reload", "");
    assert_eq!(r.status, 400, "{}", r.text());
    let j = r.json();
    assert_eq!(j["error"]["code"], "invalid_config");
    let problems: Vec<String> = j["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert!(problems.len() >= 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("models.extra.targets[0].provider")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("retry")), "{problems:?}");
    assert_eq!(admin_chat("extra").status, 200, "the old generation serves");

    // A setting that needs a restart is refused by name.
    let moved =
        config_with(&up.base_url(), EXTRA).replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:1");
    std::fs::write(gw.config_path(), moved).unwrap();
    let r = gw.admin_call("POST", "/config/reload", "");
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("server.listen: cannot change while running"),
        "{}",
        r.text()
    );
}

fn sighup_reloads(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&config_with(&up.base_url(), ""), driver);
    std::fs::write(gw.config_path(), config_with(&up.base_url(), EXTRA)).unwrap();
    gw.signal(libc::SIGHUP);
    let body = r#"{"model":"extra","messages":[{"role":"user","content":"hi"}]}"#;
    let ok = eventually(Duration::from_secs(5), || {
        gw.chat_as(common::ADMIN, body).status == 200
    });
    assert!(
        ok,
        "SIGHUP did not install the new alias: {}",
        gw.stderr.lock().unwrap()
    );
    assert!(gw.stderr.lock().unwrap().contains("generation 2 installed"));
    // A broken file on SIGHUP: logged with its paths, and the current config keeps serving.
    let broken = config_with(&up.base_url(), EXTRA).replace(
        "provider: up, model: upstream-extra",
        "provider: nope, model: x",
    );
    std::fs::write(gw.config_path(), broken).unwrap();
    gw.signal(libc::SIGHUP);
    let logged = eventually(Duration::from_secs(5), || {
        let err = gw.stderr.lock().unwrap();
        err.contains("reload refused") && err.contains("models.extra.targets[0].provider")
    });
    assert!(logged, "{}", gw.stderr.lock().unwrap());
    assert_eq!(gw.chat_as(common::ADMIN, body).status, 200);
}

/// Reload without a master key: off, and it says so (SIGHUP still works).
fn reload_needs_the_master_key(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&common::config(&up.base_url(), ""), driver);
    let r = gw.admin_call("POST", "/config/reload", "");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("server.master_key"), "{}", r.text());
    let gw2 = Gateway::start(&config_with(&up.base_url(), ""), driver);
    let addr = gw2.admin.unwrap();
    let r = http::request(
        addr,
        "POST",
        "/config/reload",
        &[("authorization", "Bearer wrong")],
        b"",
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["message"], "invalid master key");
    let r = http::request(addr, "POST", "/config/reload", &[], b"");
    assert_eq!(r.status, 401);
    let r = http::request(addr, "GET", "/config/reload", &[], b"");
    assert_eq!(r.status, 405);
}

/// A stream in progress across ten reloads arrives byte-for-byte as one without reloads.
fn a_stream_survives_ten_reloads(driver: Driver) {
    let up = mock();
    let base = format!("{}/mock/chunks=30,interval_ms=40", up.base_url());
    let gw = Gateway::start(&config_with(&base, ""), driver);
    let body =
        br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"count"}]}"#;
    let auth = format!("Bearer {TEAM_A}");
    let stream = || {
        let mut c = Client::connect(gw.api);
        c.send(
            "POST",
            "/v1/chat/completions",
            &[("authorization", &auth), ("x-request-id", "req-fixed")],
            body,
        );
        let (status, _) = c.read_head().expect("a head");
        assert_eq!(status, 200);
        let (chunks, clean) = c.read_stream();
        assert!(clean, "the stream ended cleanly");
        chunks.into_iter().flat_map(|(_, b)| b).collect::<Vec<u8>>()
    };
    let quiet = stream();
    let stop = Arc::new(AtomicBool::new(false));
    let reloads = {
        let (stop, path, cfg_a, cfg_b) = (
            stop.clone(),
            gw.config_path(),
            config_with(&base, EXTRA),
            config_with(&base, ""),
        );
        let admin = gw.admin.unwrap();
        std::thread::spawn(move || {
            let mut n = 0;
            while n < 10 && !stop.load(Ordering::SeqCst) {
                std::fs::write(&path, if n % 2 == 0 { &cfg_a } else { &cfg_b }).unwrap();
                let auth = format!("Bearer {}", common::MASTER);
                let r = http::request(
                    admin,
                    "POST",
                    "/config/reload",
                    &[("authorization", &auth)],
                    b"",
                );
                assert_eq!(r.status, 200, "{}", r.text());
                n += 1;
                std::thread::sleep(Duration::from_millis(80));
            }
            n
        })
    };
    let busy = stream();
    stop.store(true, Ordering::SeqCst);
    assert_eq!(reloads.join().unwrap(), 10, "ten reloads during the stream");
    let (busy, quiet) = (masked(&busy), masked(&quiet));
    assert!(quiet.contains("tok29 ") && quiet.ends_with("data: [DONE]\n\n"));
    assert!(busy == quiet, "the stream across reloads differs:\n{busy}");
}

/// The mock stamps each chunk with `created` and numbers its answers (`chatcmpl-mock7`);
/// everything else it sends is deterministic.
fn masked(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut rest: &str = &text;
    while let Some(at) = ["\"created\":", "chatcmpl-mock"]
        .iter()
        .filter_map(|m| rest.find(m).map(|i| (i, m.len())))
        .min()
    {
        out.push_str(&rest[..at.0 + at.1]);
        out.push('N');
        rest = rest[at.0 + at.1..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

/// 2,000 requests a second for three seconds while the config reloads every 100 ms: every
/// request succeeds.
fn load_across_reloads_sees_no_error(driver: Driver) {
    let up = mock();
    let gw = Gateway::start(&config_with(&up.base_url(), ""), driver);
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    const THREADS: u64 = 8;
    const RATE: u64 = 2_000;
    let run_for = Duration::from_secs(3);
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (ok, failed, api) = (ok.clone(), failed.clone(), gw.api);
            std::thread::spawn(move || {
                let mut c = Client::connect(api);
                let auth = format!("Bearer {TEAM_A}");
                let body = br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#;
                let every = Duration::from_nanos(1_000_000_000 * THREADS / RATE);
                let start = Instant::now();
                let mut next = start;
                while start.elapsed() < run_for {
                    c.send("POST", "/v1/chat/completions", &[("authorization", &auth)], body);
                    let r = c.read_response();
                    if r.status == 200 {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed: {} {}", r.status, r.text());
                    }
                    next += every;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        })
        .collect();
    let mut reloads = 0;
    let t0 = Instant::now();
    while t0.elapsed() < run_for {
        let cfg = config_with(&up.base_url(), if reloads % 2 == 0 { EXTRA } else { "" });
        std::fs::write(gw.config_path(), cfg).unwrap();
        let r = gw.admin_call("POST", "/config/reload", "");
        assert_eq!(r.status, 200, "{}", r.text());
        reloads += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    eprintln!("{ok} requests ok, {failed} failed, across {reloads} reloads");
    assert_eq!(failed, 0);
    assert!(reloads >= 20, "{reloads} reloads");
    assert!(
        ok >= 4_000,
        "only {ok} requests in 3 s: the load did not run at ~2,000/s"
    );
}

/// Adds providers `pa` (at `a`) and `pb` (at `b`) and `models` to the managed test config.
fn with_providers(up: &str, a: &str, b: &str, models: &str) -> String {
    let providers = format!(
        "providers:\n  pa:\n    protocol: openai\n    base_url: {a}/v1\n  pb:\n    protocol: openai\n    base_url: {b}/v1\n"
    );
    config_with(up, models).replacen("providers:\n", &providers, 1)
}

/// An open breaker stays open across a reload that keeps its alias and target (and the
/// alias next to it changing does not matter).
#[test]
fn routing_state_carries_over_by_name() {
    let (up, bad, good) = (mock(), mock(), mock());
    let bad_url = format!("{}/mock/status=503", bad.base_url());
    let m = "  m:\n    strategy: priority\n    retry: { attempts: 2, backoff_ms: 0, max_backoff_ms: 1 }\n    breaker: { failures: 2, cooldown_ms: 60000 }\n    targets:\n      - { provider: pa, model: x }\n      - { provider: pb, model: x }\n";
    let cfg = with_providers(&up.base_url(), &bad_url, &good.base_url(), m);
    let gw = Gateway::start(
        &cfg.replacen("  shards: 2\n", "  shards: 1\n", 1),
        Driver::Uring,
    );
    let admin_chat = || {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
        let auth = format!("Bearer {}", common::ADMIN);
        http::request(
            gw.api,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &auth)],
            body,
        )
    };
    for _ in 0..2 {
        assert_eq!(admin_chat().status, 200);
    }
    let tried = bad.stats().requests;
    assert_eq!(
        tried, 2,
        "the failing target was tried until its breaker opened"
    );
    let next = with_providers(
        &up.base_url(),
        &bad_url,
        &good.base_url(),
        &format!("{m}{EXTRA}"),
    );
    std::fs::write(
        gw.config_path(),
        next.replacen("  shards: 2\n", "  shards: 1\n", 1),
    )
    .unwrap();
    assert_eq!(gw.admin_call("POST", "/config/reload", "").status, 200);
    for _ in 0..3 {
        assert_eq!(admin_chat().status, 200);
    }
    assert_eq!(
        bad.stats().requests,
        tried,
        "the breaker is still open after the reload"
    );
}

/// An idle pooled connection to an origin the reload kept serves the next request: the
/// upstream sees no new connection.
#[test]
fn idle_upstream_connections_carry_over() {
    let up = mock();
    let one_shard = |c: String| c.replacen("  shards: 2\n", "  shards: 1\n", 1);
    let gw = Gateway::start(&one_shard(config_with(&up.base_url(), "")), Driver::Uring);
    assert_eq!(chat(&gw, "gpt-4o-mini").status, 200);
    assert_eq!(up.stats().total_connections, 1);
    std::fs::write(
        gw.config_path(),
        one_shard(config_with(&up.base_url(), EXTRA)),
    )
    .unwrap();
    assert_eq!(gw.admin_call("POST", "/config/reload", "").status, 200);
    for _ in 0..3 {
        assert_eq!(chat(&gw, "gpt-4o-mini").status, 200);
    }
    assert_eq!(
        up.stats().total_connections,
        1,
        "the pooled connection moved to the new generation"
    );
}

/// A reload that leaves a probed target alone leaves its probe alone (no extra probes); one
/// that changes the target's provider probes the new one at once and stops probing the old.
#[test]
fn probes_restart_only_for_targets_that_changed() {
    let (up, a, b) = (mock(), mock(), mock());
    let h = |provider: &str| {
        format!(
            "  h:\n    health: {{ interval_ms: 400, timeout_ms: 300, failures: 2 }}\n    targets:\n      - {{ provider: {provider}, model: x }}\n"
        )
    };
    let one_shard = |c: String| c.replacen("  shards: 2\n", "  shards: 1\n", 1);
    let cfg = one_shard(with_providers(
        &up.base_url(),
        &a.base_url(),
        &b.base_url(),
        &h("pa"),
    ));
    let gw = Gateway::start(&cfg, Driver::Uring);
    assert!(
        eventually(Duration::from_secs(2), || a.stats().requests >= 1),
        "probed at start"
    );
    a.reset_stats();
    let t0 = Instant::now();
    for i in 0..10 {
        let extra = if i % 2 == 0 { EXTRA } else { "" };
        let next = one_shard(with_providers(
            &up.base_url(),
            &a.base_url(),
            &b.base_url(),
            &format!("{}{extra}", h("pa")),
        ));
        std::fs::write(gw.config_path(), next).unwrap();
        assert_eq!(gw.admin_call("POST", "/config/reload", "").status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (probes, took) = (a.stats().requests, t0.elapsed());
    let most = took.as_millis() as u64 / 400 + 1;
    assert!(
        probes <= most,
        "{probes} probes in {took:?} across ten reloads (at most {most} without restarts)"
    );

    let moved = one_shard(with_providers(
        &up.base_url(),
        &a.base_url(),
        &b.base_url(),
        &h("pb"),
    ));
    std::fs::write(gw.config_path(), moved).unwrap();
    assert_eq!(gw.admin_call("POST", "/config/reload", "").status, 200);
    assert!(
        eventually(Duration::from_millis(300), || b.stats().requests >= 1),
        "the new target is probed at once"
    );
    let a_then = a.stats().requests;
    std::thread::sleep(Duration::from_millis(900));
    assert!(
        a.stats().requests <= a_then + 1,
        "the old target's probe ended"
    );
}

/// A config with 1,000 aliases and 10,000 keys reloads whole, and every key still works after;
/// prints how long the install took (control's own measure, parse to commit).
#[test]
fn a_large_config_reloads() {
    let up = mock();
    let dir = common::TempDir::new();
    let mut cfg = common::config(&up.base_url(), "  master_key: { env: MASTER_KEY }\n");
    let keys_at = cfg.find("keys:\n").unwrap();
    cfg.truncate(keys_at);
    for i in 0..1_000 {
        cfg.push_str(&format!(
            "  alias-{i}:\n    targets:\n      - {{ provider: up, model: m-{i} }}\n"
        ));
    }
    cfg.push_str("keys:\n");
    for i in 0..10_000 {
        let path = dir.0.join(format!("k{i}"));
        std::fs::write(&path, format!("sg-bulk-{i:05}")).unwrap();
        cfg.push_str(&format!(
            "  - {{ name: k{i}, key: {{ file: {} }} }}\n",
            path.display()
        ));
    }
    let gw = Gateway::start(&cfg, Driver::Uring);
    let mut took = Vec::new();
    for _ in 0..3 {
        let r = gw.admin_call("POST", "/config/reload", "");
        assert_eq!(r.status, 200, "{}", r.text());
        let j = r.json();
        assert_eq!(
            (j["aliases"].as_u64(), j["keys"].as_u64()),
            (Some(1_003), Some(10_000))
        );
        took.push(j["took_ms"].as_f64().unwrap());
    }
    eprintln!("reload of 1,000 aliases and 10,000 keys: {took:?} ms");
    for i in [0, 4_999, 9_999] {
        let auth = format!("Bearer sg-bulk-{i:05}");
        let body = br#"{"model":"alias-7","messages":[{"role":"user","content":"hi"}]}"#;
        let r = http::request(
            gw.api,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &auth)],
            body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

both_drivers!(
    reload_adds_an_alias_and_refuses_a_broken_config,
    sighup_reloads,
    reload_needs_the_master_key,
    a_stream_survives_ten_reloads,
    load_across_reloads_sees_no_error,
);
