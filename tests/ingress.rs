//! Black-box: what the ingress does before anything goes upstream — auth, limits, routing errors,
//! models list, request ids — and what the admin port and access log report.

mod common;

use std::io::Read;

use common::http::{self, Client};
use common::{ADMIN, Driver, Gateway, TEAM_A, config, mock};

const CHAT: &str = "/v1/chat/completions";

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

fn assert_error(r: &http::Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(v["error"]["type"].is_string());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn auth_and_admission_errors() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let ok = br#"{"model":"gpt-4o-mini"}"#;
    let r = http::request(gw.api, "POST", CHAT, &[], ok);
    assert_error(&r, 401, "invalid_api_key");
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", "Bearer nope")],
        ok,
    );
    assert_error(&r, 401, "invalid_api_key");
    let r = http::request(gw.api, "POST", CHAT, &[("x-api-key", TEAM_A)], ok);
    assert_eq!(r.status, 200, "x-api-key is accepted: {}", r.text());
    let a = bearer(TEAM_A);
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &a)],
        br#"{"model":"restricted"}"#,
    );
    assert_error(&r, 403, "model_not_allowed");
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &bearer(ADMIN))],
        br#"{"model":"restricted"}"#,
    );
    assert_eq!(r.status, 200);
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &a)],
        br#"{"model":"gpt-9"}"#,
    );
    assert_error(&r, 404, "model_not_found");
    for bad in [
        &b"{not json"[..],
        b"[]",
        br#"{"messages":[]}"#,
        br#"{"model":7}"#,
        b"\xff\xfe",
    ] {
        let r = http::request(gw.api, "POST", CHAT, &[("authorization", &a)], bad);
        assert_error(&r, 400, "invalid_request");
    }
    assert_eq!(
        m.stats().requests,
        2,
        "only the two admitted requests reached the upstream"
    );
}

#[test]
fn routing_and_protocol_errors() {
    let m = mock();
    let gw = Gateway::start(
        &config(
            &m.base_url(),
            "  max_body_bytes: 2048\n  max_header_bytes: 4096",
        ),
        Driver::Uring,
    );
    let a = bearer(TEAM_A);
    assert_error(
        &http::request(gw.api, "GET", "/v1/nothing", &[("authorization", &a)], b""),
        404,
        "unknown_url",
    );
    let r = http::request(gw.api, "GET", CHAT, &[("authorization", &a)], b"");
    assert_error(&r, 405, "method_not_allowed");
    assert_error(
        &http::request(
            gw.api,
            "POST",
            "/v1/models",
            &[("authorization", &a)],
            b"{}",
        ),
        405,
        "method_not_allowed",
    );

    let big = format!(r#"{{"model":"gpt-4o-mini","pad":"{}"}}"#, "x".repeat(4096));
    let mut c = Client::connect(gw.api);
    c.send("POST", CHAT, &[("authorization", &a)], big.as_bytes());
    let r = c.read_response();
    assert_error(&r, 413, "request_too_large");
    assert_eq!(r.header("connection"), Some("close"));

    let huge = "y".repeat(8000);
    let r = http::request(
        gw.api,
        "GET",
        "/v1/models",
        &[("authorization", &a), ("x-big", &huge)],
        b"",
    );
    assert_error(&r, 431, "headers_too_large");

    // Chunked request bodies are accepted and bounded too.
    let mut c = Client::connect(gw.api);
    let body = br#"{"model":"gpt-4o-mini"}"#;
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: t\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    );
    c.send_raw(req.as_bytes());
    c.send_raw(body);
    c.send_raw(b"\r\n0\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let mut c = Client::connect(gw.api);
    let body = br#"{"model":"gpt-4o-mini"}"#;
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: t\r\nauthorization: {}\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        bearer(TEAM_A),
        body.len()
    );
    c.send_raw(head.as_bytes());
    let mut interim = [0u8; 25];
    c.stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send_raw(body);
    assert_eq!(c.read_response().status, 200);
}

#[test]
fn models_list_is_per_key_and_request_ids_echo() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Epoll);
    let r = http::request(
        gw.api,
        "GET",
        "/v1/models",
        &[
            ("authorization", &bearer(TEAM_A)),
            ("x-request-id", "trace-42"),
        ],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("trace-42"));
    let v = r.json();
    assert_eq!(v["object"], "list");
    let ids: Vec<_> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["gpt-4o-mini", "text-embedding-3-small"]);
    let r = http::request(
        gw.api,
        "GET",
        "/v1/models",
        &[("authorization", &bearer(ADMIN))],
        b"",
    );
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 3);
    let r = http::request(
        gw.api,
        "GET",
        "/v1/models/gpt-4o-mini",
        &[("authorization", &bearer(TEAM_A))],
        b"",
    );
    assert_eq!(r.json()["id"], "gpt-4o-mini");
    let r = http::request(
        gw.api,
        "GET",
        "/v1/models/restricted",
        &[("authorization", &bearer(TEAM_A))],
        b"",
    );
    assert_error(&r, 404, "model_not_found");
    // Generated ids are unique.
    let a = http::request(
        gw.api,
        "GET",
        "/v1/models",
        &[("authorization", &bearer(TEAM_A))],
        b"",
    );
    let b = http::request(
        gw.api,
        "GET",
        "/v1/models",
        &[("authorization", &bearer(TEAM_A))],
        b"",
    );
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

#[test]
fn admin_endpoints_and_access_log() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    assert_eq!(gw.admin_get("/health").status, 200);
    let r = gw.admin_get("/ready");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(gw.admin_get("/nope").status, 404);

    let a = bearer(TEAM_A);
    let r = http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &a), ("x-request-id", "log-me")],
        br#"{"model":"gpt-4o-mini"}"#,
    );
    assert_eq!(r.status, 200);
    http::request(
        gw.api,
        "POST",
        CHAT,
        &[("authorization", &a)],
        br#"{"model":"gpt-9"}"#,
    );
    let line = "shardgate_requests_total{model=\"gpt-4o-mini\",provider=\"up\",status=\"200\"} 1";
    let text = gw.wait_metric(line);
    for want in [
        line,
        "shardgate_errors_total{kind=\"model_not_found\"} 1",
        "# TYPE shardgate_upstream_ttfb_seconds summary",
        "shardgate_upstream_ttfb_seconds_count{provider=\"up\"} 1",
        "shardgate_overhead_seconds_count{} 1",
        "shardgate_inflight_requests 0",
        "shardgate_shards 1",
    ] {
        assert!(
            text.lines().any(|l| l == want),
            "missing {want:?} in\n{text}"
        );
    }
    assert!(text.contains("shardgate_tokens_total{model=\"gpt-4o-mini\",direction=\"input\"}"));

    // The writer thread flushes on its own schedule: wait for both lines.
    assert!(common::eventually(
        std::time::Duration::from_secs(5),
        || {
            let log = gw.stdout.lock().unwrap();
            log.contains("log-me") && log.contains("\"error\":\"model_not_found\"")
        }
    ));
    let log = gw.stdout.lock().unwrap().clone();
    let line = log.lines().find(|l| l.contains("log-me")).unwrap();
    let v = common::json(line.as_bytes());
    assert_eq!(v["key"], "team-a");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["provider"], "up");
    assert_eq!(v["upstream_model"], "upstream-mini");
    assert_eq!(v["status"], 200);
    assert!(
        v["tokens_in"].as_u64().unwrap() > 0
            && v["total_us"].as_u64().is_some()
            && v["overhead_us"].as_u64().is_some()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("\"error\":\"model_not_found\"")),
        "{log}"
    );
}

#[test]
fn keep_alive_and_pipelined_requests_are_each_answered_once() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let a = bearer(TEAM_A);
    let mut c = Client::connect(gw.api);
    let get = format!("GET /v1/models HTTP/1.1\r\nhost: t\r\nauthorization: {a}\r\n\r\n");
    let body = r#"{"model":"gpt-4o-mini"}"#;
    let post = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: t\r\nauthorization: {a}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    // Three requests in one write: GET (no body), POST, GET.
    c.send_raw(format!("{get}{post}{get}").as_bytes());
    assert_eq!(c.read_response().json()["object"], "list");
    assert_eq!(c.read_response().json()["model"], "upstream-mini");
    assert_eq!(c.read_response().json()["object"], "list");
    // Nothing more: each request was answered exactly once.
    c.stream
        .set_read_timeout(Some(std::time::Duration::from_millis(300)))
        .unwrap();
    let mut extra = [0u8; 1];
    assert!(
        c.stream.read(&mut extra).is_err(),
        "a request was answered twice"
    );
    let text = gw.wait_metric("shardgate_inflight_requests 0");
    assert!(text.contains("shardgate_inflight_requests 0"), "{text}");
}

fn stalled_body_gets_408_and_the_shard_keeps_serving(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), "  header_timeout_ms: 300"), d);
    let a = bearer(TEAM_A);
    let mut c = Client::connect(gw.api);
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: t\r\nauthorization: {a}\r\ncontent-length: 100\r\n\r\n"
    );
    c.send_raw(head.as_bytes());
    c.send_raw(br#"{"model":"#);
    let r = c.read_response();
    assert_error(&r, 408, "request_timeout");
    assert!(c.closed_by_peer());
    // The same (only) shard still answers.
    let r = http::request(gw.api, "GET", "/v1/models", &[("authorization", &a)], b"");
    assert_eq!(r.status, 200);
    let text = gw.wait_metric("shardgate_errors_total{kind=\"request_timeout\"} 1");
    assert!(
        text.contains("shardgate_errors_total{kind=\"request_timeout\"} 1"),
        "{text}"
    );
}

both_drivers!(stalled_body_gets_408_and_the_shard_keeps_serving);
