//! Black-box routing and reliability: the real binary in front of several mock upstreams, each a
//! target with its own programmed behaviour (through the mock's `/mock/k=v/` path prefix, or a
//! tiny switchable server for a target that recovers). Decisions are read from the response
//! headers (`x-shardgate-target`, `x-shardgate-attempts`), the metrics and the access log.
//! The router's time logic is unit-tested with injected instants (src/routing); here only the
//! breaker's cooldown is waited out, configured at 150 ms.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::http::{self, Client, sse_data};
use common::{ADMIN, Driver, Gateway, MockServer, eventually, mock};

const CHAT: &str = "/v1/chat/completions";

fn config(providers: &str, models: &str) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  pin: false
providers:
{providers}
models:
{models}
keys:
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#
    )
}

/// An OpenAI-protocol provider named `name` on `m`, with mock directives in its path.
fn provider(name: &str, m: &MockServer, directives: &str) -> String {
    let prefix = if directives.is_empty() {
        String::new()
    } else {
        format!("/mock/{directives}")
    };
    format!(
        "  {name}:\n    protocol: openai\n    base_url: {}{prefix}/v1\n    timeouts: {{ connect_ms: 500, first_byte_ms: 1000, total_ms: 4000 }}\n",
        m.base_url()
    )
}

fn chat(gw: &Gateway, model: &str) -> http::Response {
    let auth = format!("Bearer {ADMIN}");
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &auth)],
        body.as_bytes(),
    )
}

/// Streams a chat for alias `m`; asserts a 200 and a clean end. Returns the routing headers
/// (as [`served_by`]) and the SSE data lines.
fn stream_m(gw: &Gateway) -> ((String, u32), Vec<String>) {
    let auth = format!("Bearer {ADMIN}");
    let mut c = Client::connect(gw.api);
    c.send(
        "POST",
        CHAT,
        &[("authorization", &auth)],
        br#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    let header = |name: &str| {
        let v = headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        v.cloned().unwrap_or_default()
    };
    let routed = (
        header("x-shardgate-target"),
        header("x-shardgate-attempts").parse().unwrap_or(0),
    );
    let (chunks, clean) = c.read_stream();
    assert!(clean);
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    (routed, sse_data(&all))
}

fn served_by(r: &http::Response) -> (String, u32) {
    (
        r.header("x-shardgate-target").unwrap_or("").to_string(),
        r.header("x-shardgate-attempts")
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
    )
}

#[test]
fn weighted_split_follows_the_weights() {
    let (a, b) = (mock(), mock());
    let cfg = config(
        &(provider("a", &a, "") + &provider("b", &b, "")),
        "  split:\n    targets:\n      - { provider: a, model: m, weight: 3 }\n      - { provider: b, model: m, weight: 1 }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let mut seen: HashMap<String, u32> = HashMap::new();
    for _ in 0..200 {
        let r = chat(&gw, "split");
        assert_eq!(r.status, 200, "{}", r.text());
        *seen.entry(served_by(&r).0).or_default() += 1;
    }
    // Smooth weighted round-robin on one shard is exact over whole cycles.
    assert_eq!(seen.get("a/m"), Some(&150), "{seen:?}");
    assert_eq!(seen.get("b/m"), Some(&50), "{seen:?}");
    assert_eq!(a.stats().requests, 150);
}

#[test]
fn least_latency_moves_traffic_away_from_a_slow_target() {
    let (fast, slow) = (mock(), mock());
    let cfg = config(
        &(provider("fast", &fast, "") + &provider("slow", &slow, "latency_ms=40")),
        "  quick:\n    strategy: least-latency\n    targets:\n      - { provider: fast, model: m }\n      - { provider: slow, model: m }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    for _ in 0..10 {
        assert_eq!(chat(&gw, "quick").status, 200);
    }
    slow.reset_stats();
    for _ in 0..60 {
        assert_eq!(chat(&gw, "quick").status, 200);
    }
    let to_slow = slow.stats().requests;
    assert!(
        to_slow <= 6,
        "{to_slow} of 60 requests still went to the slow target"
    );
}

fn retries_go_to_another_target_after_a_500(d: Driver) {
    let (bad, good) = (mock(), mock());
    let cfg = config(
        &(provider("bad", &bad, "status=500") + &provider("good", &good, "")),
        "  m:\n    strategy: priority\n    retry: { attempts: 3, backoff_ms: 1, max_backoff_ms: 5 }\n    targets:\n      - { provider: bad, model: x }\n      - { provider: good, model: x }\n",
    );
    let gw = Gateway::start(&cfg, d);
    let r = chat(&gw, "m");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), ("good/x".to_string(), 2));
    assert_eq!((bad.stats().requests, good.stats().requests), (1, 1));
    let metrics = gw.wait_metric("shardgate_retries_total{model=\"m\"} 1");
    assert!(metrics.contains(
        "shardgate_attempts_total{model=\"m\",target=\"bad/x\",result=\"upstream_server_error\"} 1"
    ));
    assert!(common::eventually(Duration::from_secs(5), || {
        gw.stdout
            .lock()
            .unwrap()
            .contains("\"attempts\":[{\"target\":\"bad/x\",\"error\":\"upstream_server_error\"")
    }));
}

#[test]
fn a_429_is_honoured_not_hammered() {
    let (busy, good) = (mock(), mock());
    let cfg = config(
        &(provider("busy", &busy, "status=429,retry_after=30") + &provider("good", &good, "")),
        "  solo:\n    retry: { attempts: 3, backoff_ms: 1, max_backoff_ms: 5 }\n    targets:\n      - { provider: busy, model: x }\n  pair:\n    strategy: priority\n    retry: { attempts: 3, backoff_ms: 1, max_backoff_ms: 5 }\n    targets:\n      - { provider: busy, model: x }\n      - { provider: good, model: x }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let r = chat(&gw, "solo");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("30"));
    assert_eq!(
        busy.stats().requests,
        1,
        "the target asked for 30 s: no retry on it"
    );
    // While it cools down the gateway answers for it, without calling it.
    let r = chat(&gw, "solo");
    assert_eq!(r.status, 429);
    assert!(
        r.header("retry-after")
            .is_some_and(|s| s.parse::<u64>().unwrap() >= 29)
    );
    assert_eq!(busy.stats().requests, 1);
    // An alias with a sibling routes around it.
    let r = chat(&gw, "pair");
    assert_eq!(r.status, 200);
    assert_eq!(served_by(&r).0, "good/x");
}

/// Reads a request's head off `s` (its body, if any, is left unread).
fn read_head(s: &mut std::net::TcpStream) {
    let mut buf = [0u8; 8192];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
}

/// A one-connection-at-a-time HTTP server answering 500, or a chat completion once `healthy`.
fn switchable() -> (String, Arc<AtomicBool>, Arc<AtomicU64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", l.local_addr().unwrap());
    let healthy = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(AtomicU64::new(0));
    let (h, n) = (healthy.clone(), hits.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            read_head(&mut s);
            n.fetch_add(1, Ordering::SeqCst);
            let (status, body) = if h.load(Ordering::SeqCst) {
                (
                    200,
                    r#"{"id":"c","object":"chat.completion","created":1,"model":"x","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
                )
            } else {
                (500, r#"{"error":{"message":"down","type":"server_error"}}"#)
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, healthy, hits)
}

/// Alias `m`: a switchable target `flaky/x` (failing until `healthy` is set) first, then
/// `good/x`, with `settings` (indented YAML lines) for the alias. Returns the gateway, the switch
/// and the flaky server's count of connections.
fn flaky_then_good(settings: &str) -> (Gateway, MockServer, Arc<AtomicBool>, Arc<AtomicU64>) {
    let good = mock();
    let (flaky_url, healthy, hits) = switchable();
    let providers = format!(
        "  flaky:\n    protocol: openai\n    base_url: {flaky_url}\n{}",
        provider("good", &good, "")
    );
    let cfg = config(
        &providers,
        &format!(
            "  m:\n    strategy: priority\n{settings}    targets:\n      - {{ provider: flaky, model: x }}\n      - {{ provider: good, model: x }}\n"
        ),
    );
    (Gateway::start(&cfg, Driver::Uring), good, healthy, hits)
}

#[test]
fn breaker_opens_after_failures_and_closes_after_a_good_probe() {
    let (gw, _good, healthy, hits) = flaky_then_good(
        "    retry: { attempts: 2, backoff_ms: 0, max_backoff_ms: 1 }\n    breaker: { failures: 2, cooldown_ms: 150 }\n",
    );
    for _ in 0..2 {
        let r = chat(&gw, "m");
        assert_eq!(served_by(&r), ("good/x".to_string(), 2), "{}", r.text());
    }
    // Open: the flaky target is not tried at all.
    let before = hits.load(Ordering::SeqCst);
    let r = chat(&gw, "m");
    assert_eq!(served_by(&r), ("good/x".to_string(), 1));
    assert_eq!(hits.load(Ordering::SeqCst), before);
    gw.wait_metric("shardgate_breaker_trips_total{model=\"m\",target=\"flaky/x\"} 1");
    // It recovers; after the cooldown one probe goes through and closes the breaker.
    healthy.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    for _ in 0..3 {
        let r = chat(&gw, "m");
        assert_eq!(served_by(&r), ("flaky/x".to_string(), 1), "{}", r.text());
    }
}

#[test]
fn fallback_alias_serves_when_every_target_fails() {
    let (bad, backup) = (mock(), mock());
    let cfg = config(
        &(provider("bad", &bad, "status=503") + &provider("backup", &backup, "")),
        "  primary:\n    retry: { attempts: 1 }\n    fallbacks: [spare]\n    targets:\n      - { provider: bad, model: x }\n  spare:\n    targets:\n      - { provider: backup, model: y }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let r = chat(&gw, "primary");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), ("backup/y".to_string(), 2));
    assert_eq!(r.json()["model"], "y");
    gw.wait_metric("shardgate_fallbacks_total{from=\"primary\",to=\"spare\"} 1");
}

fn no_retry_after_the_first_byte_was_streamed(d: Driver) {
    let (dropper, good) = (mock(), mock());
    let cfg = config(
        &(provider("dropper", &dropper, "drop_after=2") + &provider("good", &good, "")),
        "  m:\n    strategy: priority\n    retry: { attempts: 3, backoff_ms: 0, max_backoff_ms: 1 }\n    targets:\n      - { provider: dropper, model: x }\n      - { provider: good, model: x }\n",
    );
    let gw = Gateway::start(&cfg, d);
    let (head, events) = stream_m(&gw);
    assert_eq!(head, ("dropper/x".to_string(), 1));
    let last = events.last().unwrap();
    assert!(last.contains("\"error\""), "{last}");
    assert_eq!(
        good.stats().requests,
        0,
        "nothing was retried after bytes reached the client"
    );
}

#[test]
fn a_401_benches_one_target_while_its_sibling_serves() {
    let (locked, good) = (mock(), mock());
    let cfg = config(
        &(provider("locked", &locked, "status=401") + &provider("good", &good, "")),
        "  m:\n    retry: { attempts: 2, backoff_ms: 0, max_backoff_ms: 1 }\n    targets:\n      - { provider: locked, model: x }\n      - { provider: good, model: x }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    for _ in 0..10 {
        let r = chat(&gw, "m");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_by(&r).0, "good/x");
    }
    assert_eq!(locked.stats().requests, 1, "benched after its first 401");
    assert_eq!(good.stats().requests, 10);
}

/// `slow` first (priority), hedged to `quick` after 50 ms.
fn hedged_pair(
    slow: &MockServer,
    slow_directives: &str,
    quick: &MockServer,
    quick_directives: &str,
) -> String {
    config(
        &(provider("slow", slow, slow_directives) + &provider("quick", quick, quick_directives)),
        "  m:\n    strategy: priority\n    hedge: { after_ms: 50, max_percent: 100 }\n    targets:\n      - { provider: slow, model: x }\n      - { provider: quick, model: x }\n",
    )
}

fn hedging_returns_the_faster_answer_and_closes_the_slower(d: Driver) {
    let (slow, quick) = (mock(), mock());
    let gw = Gateway::start(&hedged_pair(&slow, "latency_ms=3000", &quick, ""), d);
    let (head, events) = stream_m(&gw);
    assert_eq!(head, ("quick/x".to_string(), 2));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    // The slow upstream saw its stream abandoned long before its 3 s were up.
    assert!(
        eventually(Duration::from_millis(2000), || {
            let s = slow.stats();
            s.streams_aborted == 1 && s.open_connections == 0
        }),
        "the slower upstream connection was not closed: {:?}",
        slow.stats()
    );
    assert_eq!(quick.stats().requests, 1);
    gw.wait_metric("shardgate_hedges_total{model=\"m\",target=\"quick/x\",won=\"true\"} 1");
    gw.wait_metric(
        "shardgate_attempts_total{model=\"m\",target=\"slow/x\",result=\"cancelled\"} 1",
    );
    // The access log lists both legs; the hedge's head start is upstream time, not overhead.
    assert!(eventually(Duration::from_secs(5), || gw
        .stdout
        .lock()
        .unwrap()
        .contains("\"cancelled\"")));
    let log = gw.stdout.lock().unwrap().clone();
    let v = common::json(
        log.lines()
            .find(|l| l.contains("cancelled"))
            .unwrap()
            .as_bytes(),
    );
    assert_eq!(v["attempts"][0]["target"], "slow/x");
    assert_eq!(v["attempts"][0]["error"], "cancelled");
    assert_eq!(v["attempts"][1]["target"], "quick/x");
    assert!(v["attempts"][1]["error"].is_null());
    assert!(v["upstream_us"].as_u64().unwrap() >= 50_000, "{v}");
    // Non-streaming too: the loser's connection is closed, not pooled.
    let r = chat(&gw, "m");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), ("quick/x".to_string(), 2));
    assert!(
        eventually(Duration::from_millis(2000), || slow
            .stats()
            .open_connections
            == 0),
        "{:?}",
        slow.stats()
    );
}

#[test]
fn a_first_answer_in_time_sends_no_hedge() {
    let (first, spare) = (mock(), mock());
    let gw = Gateway::start(&hedged_pair(&first, "", &spare, ""), Driver::Uring);
    for _ in 0..5 {
        let r = chat(&gw, "m");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(served_by(&r), ("slow/x".to_string(), 1));
    }
    assert_eq!(spare.stats().requests, 0);
    let m = gw.admin_get("/metrics").text();
    assert!(!m.contains("shardgate_hedges_total{"), "{m}");
}

#[test]
fn a_failed_hedge_leaves_the_race_to_the_first() {
    let (first, broken) = (mock(), mock());
    let gw = Gateway::start(
        &hedged_pair(&first, "latency_ms=300", &broken, "status=500"),
        Driver::Uring,
    );
    let r = chat(&gw, "m");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(served_by(&r), ("slow/x".to_string(), 2));
    assert_eq!(broken.stats().requests, 1);
    gw.wait_metric("shardgate_hedges_total{model=\"m\",target=\"quick/x\",won=\"false\"} 1");
    gw.wait_metric(
        "shardgate_attempts_total{model=\"m\",target=\"quick/x\",result=\"upstream_server_error\"} 1",
    );
}

both_drivers!(
    retries_go_to_another_target_after_a_500,
    no_retry_after_the_first_byte_was_streamed,
    hedging_returns_the_faster_answer_and_closes_the_slower,
);

#[test]
fn health_checks_take_a_failing_target_out_before_users_hit_it() {
    let (gw, _good, healthy, hits) =
        flaky_then_good("    health: { interval_ms: 100, timeout_ms: 500, failures: 2 }\n");
    // Two failed probes, and no user request made yet.
    gw.wait_metric(
        "shardgate_health_probes_total{model=\"m\",target=\"flaky/x\",result=\"upstream_server_error\"} 2",
    );
    let probes = hits.load(Ordering::SeqCst);
    for _ in 0..5 {
        let r = chat(&gw, "m");
        assert_eq!(served_by(&r), ("good/x".to_string(), 1), "{}", r.text());
    }
    // Only probes reached the flaky target (each probe is one connection to it).
    let m = gw.admin_get("/metrics").text();
    let probed: u64 = m
        .lines()
        .filter(|l| l.starts_with("shardgate_health_probes_total{model=\"m\",target=\"flaky/x\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(hits.load(Ordering::SeqCst) >= probes);
    assert!(hits.load(Ordering::SeqCst) <= probed + 1, "{m}");
    assert!(
        !m.contains("shardgate_attempts_total{model=\"m\",target=\"flaky/x\""),
        "{m}"
    );
    // It recovers: one good probe puts it back first in line.
    healthy.store(true, Ordering::SeqCst);
    gw.wait_metric("shardgate_health_probes_total{model=\"m\",target=\"flaky/x\",result=\"ok\"} 1");
    let r = chat(&gw, "m");
    assert_eq!(served_by(&r), ("flaky/x".to_string(), 1), "{}", r.text());
}

#[test]
fn retries_stop_at_the_requests_deadline() {
    let hang = mock();
    let cfg = config(
        &provider("hang", &hang, "hang"),
        // Three attempts of up to 300 ms each would take 900 ms; the request has 500.
        "  m:\n    retry: { attempts: 3, backoff_ms: 0, max_backoff_ms: 1 }\n    timeouts: { first_byte_ms: 300, total_ms: 500 }\n    targets:\n      - { provider: hang, model: x }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let r = chat(&gw, "m");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
    assert_eq!(served_by(&r), ("hang/x".to_string(), 2));
}

/// A server that answers every request with `head` (a 429's status line and headers, without
/// `Retry-After`) and an error body in `protocol`'s shape.
fn rate_limited(head: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            read_head(&mut s);
            let _ = write!(
                s,
                "{head}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// A 429 without `Retry-After`: each protocol's adapter reads its own rate-limit headers for
/// when to come back (OpenAI's durations, Anthropic's RFC 3339 times), and the client is told.
#[test]
fn a_429_says_when_from_the_providers_own_headers() {
    let openai = rate_limited(
        "HTTP/1.1 429 Too Many Requests\r\nx-ratelimit-remaining-requests: 0\r\nx-ratelimit-reset-requests: 7s\r\nx-ratelimit-reset-tokens: 50ms\r\n",
        r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    let reset = shardgate::observe::time::iso8601(shardgate::auth::now_ms() + 42_000);
    let head: &'static str = Box::leak(
        format!("HTTP/1.1 429 Too Many Requests\r\nanthropic-ratelimit-tokens-remaining: 0\r\nanthropic-ratelimit-tokens-reset: {reset}\r\nanthropic-ratelimit-requests-reset: {reset}\r\n")
            .into_boxed_str(),
    );
    let anthropic = rate_limited(
        head,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
    );
    let providers = format!(
        "  o:\n    protocol: openai\n    base_url: {openai}/v1\n  a:\n    protocol: anthropic\n    api_key: {{ env: UPSTREAM_KEY }}\n    base_url: {anthropic}\n"
    );
    let cfg = config(
        &providers,
        "  via-openai:\n    targets:\n      - { provider: o, model: x }\n  via-anthropic:\n    targets:\n      - { provider: a, model: y }\n",
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let r = chat(&gw, "via-openai");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("retry-after"),
        Some("7"),
        "the exhausted limit's reset"
    );
    let r = chat(&gw, "via-anthropic");
    assert_eq!(r.status, 429, "{}", r.text());
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((40..=42).contains(&secs), "{secs} s");
}
