//! Black-box: the real binary proxying to the mock upstream — round trips, streaming,
//! disconnects, upstream failures, pooling. Driver-sensitive tests run on io_uring and epoll.

mod common;

use std::time::Duration;

use common::http::{self, Client, sse_data};
use common::{Driver, Gateway, TEAM_A, UPSTREAM_KEY, config, eventually, mock};

const CHAT: &str = "/v1/chat/completions";

fn auth() -> (&'static str, String) {
    ("authorization", format!("Bearer {TEAM_A}"))
}

fn post(gw: &Gateway, path: &str, body: &str) -> http::Response {
    let (k, v) = auth();
    http::request(
        gw.api,
        "POST",
        path,
        &[(k, &v), ("content-type", "application/json")],
        body.as_bytes(),
    )
}

fn round_trip_splices_model_and_swaps_keys(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let body = r#"{"messages":[{"role":"user","content":"hé \"quoted\""}],"model":"gpt-4o-mini","temperature":0.25}"#;
    let r = post(&gw, CHAT, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "upstream-mini");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(
        r.header("x-request-id")
            .is_some_and(|id| id.starts_with("req_"))
    );
    let timing = r.header("server-timing").expect("server-timing");
    assert!(
        timing.contains("gateway;dur=") && timing.contains("upstream;dur="),
        "{timing}"
    );

    let seen = m.stats().last_request.expect("upstream saw the request");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(&*format!("Bearer {UPSTREAM_KEY}"))
    );
    assert!(
        !seen.headers.iter().any(|(_, v)| v.contains(TEAM_A)),
        "client key leaked upstream"
    );
    // The client's bytes, with only the model replaced.
    assert_eq!(
        String::from_utf8(seen.body).unwrap(),
        body.replace("gpt-4o-mini", "upstream-mini")
    );
}

fn completions_and_embeddings(d: Driver) {
    let m = mock();
    // By name, so the upstream address is resolved off the shard.
    let by_name = m.base_url().replace("127.0.0.1", "localhost");
    let gw = Gateway::start(&config(&by_name, ""), d);
    let r = post(
        &gw,
        "/v1/completions",
        r#"{"model":"gpt-4o-mini","prompt":"x"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "text_completion");
    let r = post(
        &gw,
        "/v1/embeddings",
        r#"{"model":"text-embedding-3-small","input":["a","b"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 2);
    assert_eq!(m.stats().last_request.unwrap().path, "/v1/embeddings");
}

fn stream_body(extra: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o-mini","stream":true,"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#
    )
}

fn open_stream(gw: &Gateway, body: &str) -> Client {
    let mut c = Client::connect(gw.api);
    let (k, v) = auth();
    c.send("POST", CHAT, &[(k, &v)], body.as_bytes());
    let (status, headers) = c.read_head().expect("a response head");
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"))
    );
    c
}

fn stream_events_arrive_as_sent(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let mut c = open_stream(
        &gw,
        &stream_body(r#","mock":{"chunks":5,"interval_ms":120}"#),
    );
    let (chunks, clean) = c.read_stream();
    assert!(clean, "stream must end with the terminating chunk");
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    let data = sse_data(&all);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let content: String = data[..data.len() - 1]
        .iter()
        .filter_map(|d| {
            common::json(d.as_bytes())["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, "tok0 tok1 tok2 tok3 tok4 ");
    // Spread over time, not one burst at the end: the events came in several writes, and the
    // first content arrived well before the last.
    assert!(
        chunks.len() >= 5,
        "events were batched into {} writes",
        chunks.len()
    );
    let first_content = chunks
        .iter()
        .position(|(_, c)| String::from_utf8_lossy(c).contains("tok0"))
        .unwrap();
    let gap = chunks.last().unwrap().0 - chunks[first_content].0;
    assert!(
        gap >= Duration::from_millis(400),
        "all events arrived within {gap:?}"
    );
}

fn usage_chunk_only_when_asked(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let (_, v) = auth();
    let mut c = Client::connect(gw.api);
    c.send(
        "POST",
        CHAT,
        &[("authorization", &v)],
        stream_body(r#","mock":{"chunks":3}"#).as_bytes(),
    );
    let r = c.read_response();
    let data = sse_data(&r.body);
    assert!(
        !r.text().contains("\"usage\":{"),
        "client saw a usage chunk it did not ask for: {}",
        r.text()
    );
    assert_eq!(data.last().unwrap(), "[DONE]");
    // The gateway asked the upstream for usage anyway, and counted it.
    let up = common::json(&m.stats().last_request.unwrap().body);
    assert_eq!(up["stream_options"]["include_usage"], true);
    let metrics =
        gw.wait_metric("shardgate_tokens_total{model=\"gpt-4o-mini\",direction=\"output\"} 3");
    assert!(
        metrics.contains("shardgate_tokens_total{model=\"gpt-4o-mini\",direction=\"output\"} 3"),
        "{metrics}"
    );

    c.send(
        "POST",
        CHAT,
        &[("authorization", &v)],
        stream_body(r#","stream_options":{"include_usage":true},"mock":{"chunks":3}"#).as_bytes(),
    );
    let r = c.read_response();
    let data = sse_data(&r.body);
    let usage = common::json(data[data.len() - 2].as_bytes());
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
}

fn client_disconnect_closes_upstream(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let mut c = open_stream(
        &gw,
        &stream_body(r#","mock":{"chunks":200,"interval_ms":50}"#),
    );
    c.read_chunk().unwrap().expect("first event");
    assert_eq!(m.stats().open_connections, 1);
    drop(c);
    assert!(
        eventually(Duration::from_secs(5), || m.stats().open_connections == 0),
        "upstream connection still open after the client left: {:?}",
        m.stats()
    );
    assert!(m.stats().streams_aborted >= 1);
    let metrics = gw.wait_metric("shardgate_errors_total{kind=\"client_disconnected\"} 1");
    assert!(
        metrics.contains("shardgate_errors_total{kind=\"client_disconnected\"} 1"),
        "{metrics}"
    );

    // Same while waiting for a slow first byte (a non-streaming request).
    let mut c = Client::connect(gw.api);
    let (_, v) = auth();
    c.send(
        "POST",
        CHAT,
        &[("authorization", &v)],
        br#"{"model":"gpt-4o-mini","mock":{"hang":true}}"#,
    );
    assert!(eventually(Duration::from_secs(5), || m
        .stats()
        .open_connections
        == 1));
    drop(c);
    assert!(
        eventually(Duration::from_secs(5), || m.stats().open_connections == 0),
        "{:?}",
        m.stats()
    );
}

fn mid_stream_failure_ends_with_error_event(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let mut c = open_stream(
        &gw,
        &stream_body(r#","mock":{"chunks":10,"drop_after":3,"interval_ms":10}"#),
    );
    let (chunks, clean) = c.read_stream();
    assert!(
        clean,
        "a broken upstream must still give the client a clean end"
    );
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    let data = sse_data(&all);
    let last = common::json(data.last().unwrap().as_bytes());
    assert_eq!(last["error"]["code"], "upstream_protocol_error", "{data:?}");
    assert!(
        data.len() >= 3,
        "the events before the failure were forwarded: {data:?}"
    );
    assert!(c.closed_by_peer());
}

fn upstream_failures_map_to_gateway_errors(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let r = post(
        &gw,
        CHAT,
        r#"{"model":"gpt-4o-mini","mock":{"status":500}}"#,
    );
    assert_eq!(r.status, 502);
    let e = r.json();
    assert_eq!(e["error"]["code"], "upstream_server_error");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("\"up\""),
        "names the provider: {e}"
    );
    assert!(!r.text().contains(UPSTREAM_KEY));

    let r = post(
        &gw,
        CHAT,
        r#"{"model":"gpt-4o-mini","mock":{"latency_ms":5000}}"#,
    );
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
    // (A 504 at all means first_byte_ms applied: the mock would have answered 200 at 5 s.)

    let r = post(
        &gw,
        CHAT,
        r#"{"model":"gpt-4o-mini","mock":{"malformed":true,"status":200,"drop_after":0}}"#,
    );
    assert_eq!(r.status, 502, "{}", r.text());

    // 4xx bodies pass through with their status and Retry-After.
    let r = post(
        &gw,
        CHAT,
        r#"{"model":"gpt-4o-mini","mock":{"status":429,"retry_after":"7"}}"#,
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let metrics = gw.wait_metric(
        "shardgate_upstream_errors_total{provider=\"up\",kind=\"upstream_timeout\"} 1",
    );
    assert!(
        metrics.contains(
            "shardgate_upstream_errors_total{provider=\"up\",kind=\"upstream_server_error\"}"
        ),
        "{metrics}"
    );
}

fn refused_upstream_is_502(d: Driver) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = Gateway::start(&config(&url, ""), d);
    let r = post(&gw, CHAT, r#"{"model":"gpt-4o-mini"}"#);
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_connect_failed");
}

fn keep_alive_reuses_upstream_connections(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&config(&m.base_url(), ""), d);
    let mut c = Client::connect(gw.api);
    let (_, v) = auth();
    for i in 0..20 {
        let body = if i % 2 == 0 {
            r#"{"model":"gpt-4o-mini"}"#.to_owned()
        } else {
            stream_body("")
        };
        c.send("POST", CHAT, &[("authorization", &v)], body.as_bytes());
        assert_eq!(c.read_response().status, 200);
    }
    let s = m.stats();
    assert_eq!(s.requests, 20);
    assert_eq!(
        s.total_connections, 1,
        "one upstream connection for 20 sequential requests"
    );
}

#[test]
fn pooled_connections_close_after_their_idle_timeout() {
    let m = mock();
    let cfg = config(&m.base_url(), "").replace(
        "    api_key: { env: UPSTREAM_KEY }\n",
        "    api_key: { env: UPSTREAM_KEY }\n    pool: { idle_timeout_ms: 300 }\n",
    );
    assert!(cfg.contains("idle_timeout_ms"));
    let gw = Gateway::start(&cfg, Driver::Uring);
    assert_eq!(post(&gw, CHAT, r#"{"model":"gpt-4o-mini"}"#).status, 200);
    assert_eq!(m.stats().open_connections, 1, "kept for reuse");
    // No further request: the shard's periodic check closes it once it has idled too long.
    assert!(
        common::eventually(Duration::from_secs(4), || m.stats().open_connections == 0),
        "{:?}",
        m.stats()
    );
}

fn dead_pooled_connection_is_retried_once(d: Driver) {
    // An upstream that answers once with keep-alive, then closes the idle connection.
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let body =
                br#"{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            drop(s); // closes the kept-alive connection behind the gateway's back
        }
    });
    let gw = Gateway::start(&config(&format!("http://{addr}"), ""), d);
    assert_eq!(post(&gw, CHAT, r#"{"model":"gpt-4o-mini"}"#).status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let r = post(&gw, CHAT, r#"{"model":"gpt-4o-mini"}"#);
    assert_eq!(
        r.status,
        200,
        "a dead pooled connection must be retried on a fresh one: {}",
        r.text()
    );
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

both_drivers!(
    round_trip_splices_model_and_swaps_keys,
    completions_and_embeddings,
    stream_events_arrive_as_sent,
    usage_chunk_only_when_asked,
    client_disconnect_closes_upstream,
    mid_stream_failure_ends_with_error_event,
    upstream_failures_map_to_gateway_errors,
    refused_upstream_is_502,
    keep_alive_reuses_upstream_connections,
    dead_pooled_connection_is_retried_once,
);
