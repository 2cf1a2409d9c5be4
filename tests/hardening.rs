//! Black-box: hostile clients against the real binary. Every bound the gateway keeps (head
//! and body size in bytes received, the head's total deadline, the write deadline, connection
//! and in-flight caps, strict framing, one meaning per member, allow-lists on every hop, a
//! panic kept inside its connection) is driven past its edge here, and what the client sees,
//! the metric that counts it, and that the gateway goes on serving are all checked.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{self, Client};
use common::{Driver, Gateway, TEAM_A, config, mock};

const CHAT: &str = "/v1/chat/completions";
const CHAT_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;

fn bearer() -> String {
    format!("Bearer {TEAM_A}")
}

/// An ordinary chat on a fresh connection.
fn chat(gw: &Gateway) -> http::Response {
    http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &bearer())],
        CHAT_BODY.as_bytes(),
    )
}

/// The gateway still serves an ordinary request on a fresh connection.
fn still_serves(gw: &Gateway) {
    let r = chat(gw);
    assert_eq!(r.status, 200, "{}", r.text());
}

/// One ordinary chat on an open connection: its status.
fn chat_on(c: &mut Client) -> u16 {
    c.send(
        "POST",
        CHAT,
        &[("authorization", &bearer())],
        CHAT_BODY.as_bytes(),
    );
    c.read_response().status
}

/// Reads what the gateway sends until it closes; returns the bytes.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn status_and_body(raw: &[u8]) -> (u16, serde_json::Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, common::json(body.as_bytes()))
}

fn trickled_head_is_cut_off_at_the_header_deadline(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), "  header_timeout_ms: 800"), d);
    let mut s = TcpStream::connect(gw.api).unwrap();
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\n",
        bearer()
    );
    let started = Instant::now();
    // One byte every 150 ms: each read is well inside the timeout, the head never is.
    let mut cut_after = None;
    for (i, b) in head.bytes().enumerate() {
        if s.write_all(&[b]).is_err() {
            cut_after = Some(i);
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let raw = read_to_close(&mut s);
    let (status, body) = status_and_body(&raw);
    assert_eq!(status, 408, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "request_timeout");
    // Cut off at the head's deadline (800 ms from its first byte), long before the 60+ bytes
    // of head had trickled in (that would take 9 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not cut off: {cut_after:?}"
    );
    gw.wait_metric("shardgate_errors_total{kind=\"request_timeout\"} 1");
    still_serves(&gw);
}

fn a_client_that_stops_reading_is_cut_off_and_released(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), "  write_timeout_ms: 400"), d);
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&gw.api.into()).unwrap();
    let mut s: TcpStream = s.into();
    // A long stream the client never reads: the gateway's writes stall on a zero window.
    let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"chunks":200000}}"#;
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n{body}",
        bearer(),
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    gw.wait_metric("shardgate_client_write_timeouts_total 1");
    // Its in-flight slot and its upstream connection are released.
    gw.wait_metric("shardgate_inflight_requests 0");
    assert!(
        common::eventually(Duration::from_secs(5), || m.stats().open_connections == 0),
        "the upstream connection of the cut-off stream stayed open"
    );
    still_serves(&gw);
    drop(s);
}

fn chunked_body_is_bounded_in_bytes_received(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), "  max_body_bytes: 4096"), d);
    let mut s = TcpStream::connect(gw.api).unwrap();
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\ntransfer-encoding: chunked\r\n\r\n",
        bearer()
    );
    s.write_all(head.as_bytes()).unwrap();
    // Each chunk carries one payload byte and 200 bytes of extension: the decoded payload
    // stays tiny while the bytes received pass the limit.
    let chunk = format!("1;pad={}\r\n{{\r\n", "x".repeat(200));
    for _ in 0..40 {
        if s.write_all(chunk.as_bytes()).is_err() {
            break;
        }
    }
    let raw = read_to_close(&mut s);
    let (status, body) = status_and_body(&raw);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&raw));
    assert_eq!(body["error"]["code"], "request_too_large");
    gw.wait_metric("shardgate_errors_total{kind=\"request_too_large\"} 1");
    assert_eq!(m.stats().requests, 0, "nothing went upstream");
    still_serves(&gw);
}

#[test]
fn lenient_framing_is_refused_with_400() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let a = bearer();
    let cases = [
        format!("POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ncontent-length: +5\r\n\r\n{{}}   "),
        format!(
            "POST {CHAT} HTTP/1.0\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n"
        ),
        format!(
            "POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n2 \r\n{{}}\r\n0\r\n\r\n"
        ),
        format!(
            "POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n2\n{{}}\r\n0\r\n\r\n"
        ),
        format!(
            "POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\nbad trailer\r\n\r\n"
        ),
    ];
    for raw in &cases {
        let mut s = TcpStream::connect(gw.api).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let got = read_to_close(&mut s);
        let (status, body) = status_and_body(&got);
        assert_eq!(status, 400, "{raw:?} got {}", String::from_utf8_lossy(&got));
        assert_eq!(body["error"]["type"], "invalid_request_error", "{raw:?}");
    }
    assert_eq!(m.stats().requests, 0);
    gw.wait_metric(&format!(
        "shardgate_errors_total{{kind=\"invalid_request\"}} {}",
        cases.len()
    ));
    still_serves(&gw);
}

#[test]
fn a_duplicated_member_is_refused_on_both_ingresses() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let a = bearer();
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &a)],
        br#"{"model":"gpt-4o-mini","stream":false,"messages":[],"stream":true}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("`stream`"), "{msg}");
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[("x-api-key", TEAM_A), ("anthropic-version", "2023-06-01")],
        br#"{"model":"gpt-4o-mini","max_tokens":5,"max_tokens":50000,"messages":[]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`max_tokens`")
    );
    assert_eq!(m.stats().requests, 0);
}

fn a_panic_closes_only_its_connection(d: Driver) {
    let m = mock();
    let cfg = config(&m.base_url(), "");
    let gw = Gateway::try_start(&cfg, d, &[("SHARDGATE_TEST_FAULTS", "1")]).unwrap();
    // A keep-alive connection open on the same shard before the panic.
    let mut idle = Client::connect(gw.api);
    assert_eq!(chat_on(&mut idle), 200);

    let mut c = Client::connect(gw.api);
    c.send("GET", "/__faults/panic", &[], b"");
    assert!(
        c.read_head().is_none(),
        "a panicked request's connection is closed"
    );
    gw.wait_metric("shardgate_panics_total 1");
    gw.wait_metric("shardgate_inflight_requests 0");
    // The other connection, and new ones, go on.
    assert_eq!(chat_on(&mut idle), 200);
    still_serves(&gw);
    assert!(gw.stderr.lock().unwrap().contains("a request panicked"));
}

#[test]
fn connections_past_the_cap_are_closed_at_once() {
    let m = mock();
    let gw = Gateway::start(
        &config(&m.base_url(), "  max_connections: 3"),
        Driver::Uring,
    );
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(gw.api)).collect();
    // Make sure all three are accepted (served once) before the fourth arrives.
    for c in &mut held {
        assert_eq!(chat_on(c), 200);
    }
    let mut fourth = Client::connect(gw.api);
    assert!(fourth.closed_by_peer(), "the fourth connection was served");
    gw.wait_metric("shardgate_connections_rejected_total 1");
    assert!(gw.stderr.lock().unwrap().contains("max_connections"));
    // Room again once one closes.
    drop(held.pop());
    assert!(common::eventually(Duration::from_secs(5), || {
        gw.admin_get("/metrics")
            .text()
            .lines()
            .any(|l| l == "shardgate_connections_open 2")
    }));
    still_serves(&gw);
}

#[test]
fn requests_past_the_in_flight_cap_get_503_with_retry_after() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), "  max_inflight: 1"), Driver::Uring);
    let slow = std::thread::spawn({
        let api = gw.api;
        move || {
            http::request(
                api,
                "POST",
                CHAT,
                &[("authorization", &bearer())],
                br#"{"model":"gpt-4o-mini","mock":{"latency_ms":800}}"#,
            )
        }
    });
    assert!(common::eventually(Duration::from_secs(5), || {
        gw.admin_get("/metrics")
            .text()
            .lines()
            .any(|l| l == "shardgate_inflight_requests 1")
    }));
    let r = chat(&gw);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(slow.join().unwrap().status, 200);
    gw.wait_metric("shardgate_errors_total{kind=\"overloaded\"} 1");
    still_serves(&gw);
}

#[test]
fn a_fallback_the_key_may_not_use_is_skipped_and_logged() {
    let (bad, good) = (mock(), mock());
    let cfg = format!(
        r#"
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  pin: false
  access_log: stdout
providers:
  bad: {{ protocol: openai, base_url: "{}/mock/status=503/v1" }}
  good: {{ protocol: openai, base_url: "{}/v1" }}
models:
  open:
    retry: {{ attempts: 1 }}
    fallbacks: [secret, spare]
    targets: [ {{ provider: bad, model: x }} ]
  secret:
    targets: [ {{ provider: good, model: secret-model }} ]
  spare:
    targets: [ {{ provider: good, model: spare-model }} ]
keys:
  - {{ name: limited, key: {{ env: TEAM_A_KEY }}, models: [open, spare] }}
"#,
        bad.base_url(),
        good.base_url()
    );
    let gw = Gateway::start(&cfg, Driver::Uring);
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &bearer()), ("x-request-id", "skip-me")],
        br#"{"model":"open","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["model"],
        "spare-model",
        "served by the allowed fallback"
    );
    let seen = good.stats().last_request.unwrap();
    assert!(!String::from_utf8_lossy(&seen.body).contains("secret-model"));
    assert_eq!(
        good.stats().requests,
        1,
        "the forbidden alias was never tried"
    );
    assert!(common::eventually(Duration::from_secs(5), || {
        gw.stdout.lock().unwrap().contains("skip-me")
    }));
    let log = gw.stdout.lock().unwrap().clone();
    let line = log.lines().find(|l| l.contains("skip-me")).unwrap();
    let v = common::json(line.as_bytes());
    assert_eq!(v["skipped_not_allowed"], serde_json::json!(["secret"]));
}

#[test]
fn config_bound_for_a_head_is_trimmed_or_refused_at_load() {
    let m = mock();
    let cfg = config(&m.base_url(), "");
    // A key from an env file written by `echo`: the newline is trimmed, the key works.
    let gw = Gateway::try_start(
        &cfg,
        Driver::Uring,
        &[("UPSTREAM_KEY", "sk-upstream-secret\n")],
    )
    .unwrap();
    still_serves(&gw);
    let seen = m.stats().last_request.unwrap();
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-upstream-secret")
    );
    drop(gw);
    // A key that would add a header upstream is refused, with its path, without its value.
    let err = Gateway::try_start(
        &cfg,
        Driver::Uring,
        &[("UPSTREAM_KEY", "sk-1\r\nx-injected: 1")],
    )
    .err()
    .expect("the gateway refused to start");
    assert!(err.contains("providers.up.api_key"), "{err}");
    assert!(err.contains("control character"), "{err}");
    assert!(!err.contains("x-injected"), "the secret was echoed: {err}");
    // So is a base URL with a line break in it (a YAML escape).
    let bad = cfg.replace(
        &format!("base_url: {}/v1", m.base_url()),
        &format!("base_url: \"{}/v1\\r\\nx: y\"", m.base_url()),
    );
    assert_ne!(bad, cfg);
    let err = Gateway::try_start(&bad, Driver::Uring, &[])
        .err()
        .expect("refused");
    assert!(err.contains("providers.up.base_url"), "{err}");
}

#[test]
fn admin_connections_get_the_same_deadlines() {
    let m = mock();
    let gw = Gateway::start(
        &config(&m.base_url(), "  header_timeout_ms: 600"),
        Driver::Uring,
    );
    let admin = gw.admin.unwrap();
    let mut s = TcpStream::connect(admin).unwrap();
    let started = Instant::now();
    for b in b"GET /metrics HTTP/1.1\r\nhost: x\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    assert!(
        read_to_close(&mut s).is_empty(),
        "a trickled admin head got an answer"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the admin head was not cut off"
    );
    assert_eq!(gw.admin_get("/health").status, 200);
}

both_drivers!(
    trickled_head_is_cut_off_at_the_header_deadline,
    a_client_that_stops_reading_is_cut_off_and_released,
    chunked_body_is_bounded_in_bytes_received,
    a_panic_closes_only_its_connection,
);
