//! Black-box: hostile and broken upstreams against the real binary (the mock in `loadtest/`
//! programmed per request). An upstream past a bound ends the exchange with a well-formed error
//! (a 502, or an in-band error event once a stream has started), the upstream connection is
//! closed, a metric counts it, and the gateway goes on serving. Also: the gateway's memory
//! stays flat while 50 hostile connections, client and upstream, run at once.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::http::{self, Client, sse_data};
use common::{Driver, Gateway, TEAM_A, config, mock};

const CHAT: &str = "/v1/chat/completions";
/// Small bounds, so each hostile case passes them quickly.
const SMALL: &str = "  max_event_bytes: 65536\n  max_response_bytes: 262144";

fn bearer() -> String {
    format!("Bearer {TEAM_A}")
}

fn chat_body(stream: bool, mock: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"user","content":"hi"}}],"mock":{{{mock}}}}}"#
    )
}

fn post(gw: &Gateway, path: &str, body: &str) -> http::Response {
    let a = bearer();
    let headers: &[(&str, &str)] = if path == "/v1/messages" {
        &[("x-api-key", TEAM_A), ("anthropic-version", "2023-06-01")]
    } else {
        &[("authorization", &a)]
    };
    http::request(gw.api, "POST", path, headers, body.as_bytes())
}

/// The `data:` of a stream's last event, parsed.
fn last_event(r: &http::Response) -> serde_json::Value {
    let events = sse_data(&r.body);
    let last = events.last().expect("at least one event");
    common::json(last.as_bytes())
}

fn error_code(v: &serde_json::Value) -> &str {
    v["error"]["code"]
        .as_str()
        .or_else(|| v["error"]["type"].as_str())
        .unwrap_or_default()
}

/// The end of a long body, for failure messages.
fn tail(s: &str) -> &str {
    let mut at = s.len().saturating_sub(600);
    while !s.is_char_boundary(at) {
        at += 1;
    }
    &s[at..]
}

fn still_serves(gw: &Gateway) {
    let r = post(gw, CHAT, &chat_body(false, ""));
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The mock's base URL with `directives` for every request (a translated request does not
/// carry the body's `mock` object).
fn programmed(m: &common::MockServer, directives: &str) -> String {
    format!("{}/mock/{directives}", m.base_url())
}

fn a_stream_that_never_ends_an_event_is_cut_at_the_bound(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&programmed(&m, "sse_no_blank=4000000"), SMALL), d);
    for path in [CHAT, "/v1/messages"] {
        let body =
            chat_body(true, "").replace(r#""stream":true"#, r#""stream":true,"max_tokens":16"#);
        let r = post(&gw, path, &body);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = last_event(&r);
        let want = if path == CHAT {
            "upstream_response_too_large"
        } else {
            "api_error"
        };
        assert_eq!(error_code(&v), want, "{path}: {}", tail(&r.text()));
        assert!(
            r.text().contains("larger than 65536 bytes"),
            "{}",
            tail(&r.text())
        );
    }
    gw.wait_metric("shardgate_errors_total{kind=\"upstream_response_too_large\"} 2");
    assert!(
        common::eventually(Duration::from_secs(5), || m.stats().open_connections == 0),
        "the hostile upstream's connections stayed open"
    );
    still_serves(&gw);
}

#[test]
fn one_giant_event_is_cut_at_the_bound() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), SMALL), Driver::Uring);
    let r = post(&gw, CHAT, &chat_body(true, r#""giant_event":300000"#));
    assert_eq!(r.status, 200);
    assert_eq!(error_code(&last_event(&r)), "upstream_response_too_large");
    still_serves(&gw);
}

fn cr_only_line_endings_are_events_too(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&programmed(&m, "cr_only=1"), ""), d);
    // Same protocol: the upstream's bytes as they are, usage read on the way.
    let r = post(&gw, CHAT, &chat_body(true, r#""cr_only":true"#));
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.contains("\r\r") && !text.contains('\n'), "{text:?}");
    assert!(text.contains("[DONE]"));
    // Translated to Anthropic: the CR-only events are found and carried across.
    let r = post(
        &gw,
        "/v1/messages",
        &chat_body(true, r#""cr_only":true"#)
            .replace(r#""stream":true"#, r#""stream":true,"max_tokens":16"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("event: message_stop"), "{t}");
    assert!(t.contains("text_delta"), "{t}");
    gw.wait_metric(
        "shardgate_requests_total{model=\"gpt-4o-mini\",provider=\"up\",status=\"200\"} 2",
    );
}

#[test]
fn a_huge_body_is_refused_in_bytes_received() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), SMALL), Driver::Uring);
    for mock in [
        r#""huge_body":1000000"#,
        r#""huge_body":1000000,"huge_body_chunked":true"#,
        // Chunk extensions carry no payload but count.
        // 250,000 bytes of payload, under the bound; with 64 KiB chunks' extensions, over it.
        r#""huge_body":250000,"huge_body_chunked":true,"chunk_ext":4000"#,
    ] {
        let r = post(&gw, CHAT, &chat_body(false, mock));
        assert_eq!(r.status, 502, "{mock}: {}", tail(&r.text()));
        let code = r.json()["error"]["code"].as_str().unwrap().to_owned();
        assert!(
            code == "upstream_response_too_large",
            "{mock}: {code} {}",
            r.text()
        );
    }
    gw.wait_metric("shardgate_errors_total{kind=\"upstream_response_too_large\"} 3");
    assert!(common::eventually(Duration::from_secs(5), || m
        .stats()
        .open_connections
        == 0));
    still_serves(&gw);
}

#[test]
fn lenient_upstream_framing_is_a_protocol_error() {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let r = post(&gw, CHAT, &chat_body(false, r#""chunk_size_garbage":true"#));
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_protocol_error");
    let r = post(&gw, CHAT, &chat_body(false, r#""big_head":100000"#));
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_protocol_error");
    still_serves(&gw);
}

#[test]
fn queued_tool_arguments_are_bounded() {
    let m = mock();
    let base = programmed(&m, "tool_args=1500000,tools=2");
    let gw = Gateway::start(&config(&base, ""), Driver::Uring);
    // OpenAI upstream, Anthropic client: the translator holds arguments of queued calls.
    let body = chat_body(true, "").replace(r#""stream":true"#, r#""stream":true,"max_tokens":16"#);
    let r = post(&gw, "/v1/messages", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("event: error"), "{}", tail(&t));
    assert!(t.contains("tool-call arguments"), "{}", tail(&t));
    gw.wait_metric("shardgate_errors_total{kind=\"upstream_response_too_large\"} 1");
    still_serves(&gw);
}

#[test]
fn usage_near_the_top_of_u64_saturates() {
    let m = mock();
    let gw = Gateway::start(&config(&programmed(&m, "usage_huge=1"), ""), Driver::Uring);
    // A debug build panics on overflow: these pass only if every sum saturates.
    for (path, stream) in [
        (CHAT, false),
        (CHAT, true),
        ("/v1/messages", false),
        ("/v1/messages", true),
    ] {
        let body = chat_body(stream, "").replace(r#""messages""#, r#""max_tokens":16,"messages""#);
        let r = post(&gw, path, &body);
        assert_eq!(r.status, 200, "{path} {stream}: {}", r.text());
    }
    let text = gw.admin_get("/metrics").text();
    assert!(
        text.contains(
            "shardgate_tokens_total{model=\"gpt-4o-mini\",direction=\"input\"} 18446744073709551615"
        ),
        "{text}"
    );
    assert!(!gw.stderr.lock().unwrap().contains("panicked"));
}

fn a_stalled_stream_ends_at_the_total_timeout(d: Driver) {
    let m = mock();
    let cfg = config(&m.base_url(), "").replace("total_ms: 8000", "total_ms: 1500");
    let gw = Gateway::start(&cfg, d);
    let started = Instant::now();
    let r = post(&gw, CHAT, &chat_body(true, r#""stall_after":2"#));
    assert_eq!(r.status, 200);
    assert_eq!(error_code(&last_event(&r)), "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(common::eventually(Duration::from_secs(5), || m
        .stats()
        .open_connections
        == 0));
    still_serves(&gw);
}

/// An upstream on a loopback port that answers every request with `response` as it is.
fn canned_upstream(response: &'static [u8]) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 65536];
            let mut got = Vec::new();
            // Read the request head and its Content-Length body, then answer and close.
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break;
                    }
                }
            }
            let _ = s.write_all(response);
        }
    });
    format!("http://{addr}")
}

#[test]
fn upstream_header_bytes_reach_the_client_only_vetted() {
    // Header values httparse lets through (obs-text), in the two headers the gateway passes on.
    let up = canned_upstream(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\xc3\xa9\x80\r\n\
          retry-after: 5\xff\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    );
    let gw = Gateway::start(&config(&up, ""), Driver::Uring);
    let mut s = TcpStream::connect(gw.api).unwrap();
    let body = chat_body(false, "");
    let req = format!(
        "POST {CHAT} HTTP/1.1\r\nauthorization: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        bearer(),
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head");
    let head = &raw[..head_end];
    assert!(
        head.iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\r' || b == b'\n'),
        "unvetted bytes in the head: {:?}",
        String::from_utf8_lossy(head)
    );
    let head = String::from_utf8_lossy(head);
    // Non-UTF-8 bytes became U+FFFD when read; whatever the bytes, they go out escaped.
    assert!(
        head.contains("content-type: application/json%C3%A9%EF%BF%BD\r\n"),
        "{head}"
    );
}

// === memory under attack ===

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// One hostile connection of kind `i % 5`, run to its end.
fn hostile(api: std::net::SocketAddr, i: usize) {
    let a = bearer();
    match i % 5 {
        // A head trickled a byte at a time.
        0 => {
            let mut s = TcpStream::connect(api).unwrap();
            for b in format!("POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\nx-pad: ").bytes() {
                if s.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // A chunked body of extensions: no payload, all framing.
        1 => {
            let mut s = TcpStream::connect(api).unwrap();
            let head = format!(
                "POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes());
            let chunk = format!("1;{}\r\n{{\r\n", "e".repeat(1000));
            for _ in 0..200 {
                if s.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
            }
            let _ = s.read(&mut [0u8; 512]);
        }
        // An upstream stream that never ends an event.
        2 => {
            let r = post_raw(api, &chat_body(true, r#""sse_no_blank":2000000"#));
            assert!(
                r.contains("upstream_response_too_large"),
                "{}",
                &r[..r.len().min(300)]
            );
        }
        // An upstream body far past the bound.
        3 => {
            let r = post_raw(api, &chat_body(false, r#""huge_body":3000000"#));
            assert!(r.starts_with("HTTP/1.1 502"), "{}", &r[..r.len().min(300)]);
        }
        // A client that asks for a long stream and never reads it.
        _ => {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_recv_buffer_size(4096).unwrap();
            s.connect(&api.into()).unwrap();
            let mut s: TcpStream = s.into();
            let body = chat_body(true, r#""chunks":100000"#);
            let req = format!(
                "POST {CHAT} HTTP/1.1\r\nauthorization: {a}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(req.as_bytes());
            std::thread::sleep(Duration::from_millis(2500));
        }
    }
}

fn post_raw(api: std::net::SocketAddr, body: &str) -> String {
    let mut c = Client::connect(api);
    c.send(
        "POST",
        CHAT,
        &[("authorization", &bearer())],
        body.as_bytes(),
    );
    let r = c.read_response();
    format!("HTTP/1.1 {} \r\n{}", r.status, r.text())
}

#[test]
fn memory_stays_flat_under_50_hostile_connections() {
    let m = mock();
    let extra = format!(
        "{SMALL}\n  max_body_bytes: 65536\n  header_timeout_ms: 1500\n  write_timeout_ms: 1000"
    );
    let gw = Gateway::start(&config(&m.base_url(), &extra), Driver::Uring);
    // Warm up: the allocator's arenas, the pools, the scratch buffers.
    for _ in 0..20 {
        still_serves(&gw);
    }
    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kib(gw.pid());
    let api = gw.api;
    let workers: Vec<_> = (0..50)
        .map(|i| std::thread::spawn(move || hostile(api, i)))
        .collect();
    let mut peak = idle;
    while workers.iter().any(|w| !w.is_finished()) {
        peak = peak.max(rss_kib(gw.pid()));
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in workers {
        w.join().unwrap();
    }
    eprintln!("gateway RSS: idle {idle} KiB, peak {peak} KiB under 50 hostile connections");
    assert!(
        peak <= idle + 8 * 1024,
        "RSS rose from {idle} KiB to {peak} KiB"
    );
    still_serves(&gw);
    gw.wait_metric("shardgate_inflight_requests 0");
}

both_drivers!(
    a_stream_that_never_ends_an_event_is_cut_at_the_bound,
    cr_only_line_endings_are_events_too,
    a_stalled_stream_ends_at_the_total_timeout,
);
