//! Black-box tests of the mock upstream over real TCP with blocking clients.

mod support;

use std::time::{Duration, Instant};

use loadtest::mock::{MockConfig, MockServer};
use serde_json::Value;
use support::chat::*;
use support::{Client, call, eventually, server};

#[test]
fn json_chat() {
    let m = server();
    let r = call(m.addr(), "POST", CHAT, &[], BODY);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["model"], "gpt-test");
    assert!(j["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(j["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(j["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let p = (BODY.len() / 4) as u64;
    assert_eq!(j["usage"]["prompt_tokens"], p);
    assert_eq!(j["usage"]["completion_tokens"], 8);
    assert_eq!(j["usage"]["total_tokens"], p + 8);
}

#[test]
fn streaming_chat_without_usage() {
    let m = server();
    let r = call(m.addr(), "POST", CHAT, &[], STREAM);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert!(r.complete);
    let events = r.events();
    assert_eq!(events.len(), 1 + 8 + 1 + 1);
    assert_eq!(r.chunks.len(), events.len(), "one chunk per event");
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let js = r.event_json();
    let id = js[0]["id"].clone();
    for j in &js {
        assert_eq!(j["object"], "chat.completion.chunk");
        assert_eq!(j["id"], id);
        assert_eq!(j["model"], "gpt-test");
        assert!(j.get("usage").is_none(), "usage only when asked: {j}");
    }
    assert_eq!(js[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(js[0]["choices"][0]["delta"]["content"], "");
    assert_eq!(content(&js), "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ");
    let last = &js[js.len() - 1];
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], serde_json::json!({}));
}

#[test]
fn streaming_chat_with_usage() {
    let m = server();
    let r = call(
        m.addr(),
        "POST",
        CHAT,
        &[("x-mock-chunks", "3")],
        STREAM_USAGE,
    );
    let events = r.events();
    assert_eq!(events.len(), 1 + 3 + 1 + 1 + 1);
    let js = r.event_json();
    let (usage, rest) = js.split_last().unwrap();
    for j in rest {
        assert!(
            j["usage"].is_null() && j.get("usage").is_some(),
            "usage:null in {j}"
        );
    }
    assert_eq!(usage["choices"], serde_json::json!([]));
    let p = (STREAM_USAGE.len() / 4) as u64;
    assert_eq!(usage["usage"]["prompt_tokens"], p);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    assert_eq!(usage["usage"]["total_tokens"], p + 3);
}

#[test]
fn directives_sources_and_precedence() {
    let m = server();
    let a = m.addr();
    let path = "/mock/chunks=2,latency_ms=0/v1/chat/completions";
    assert_eq!(chunks_of(&call(a, "POST", path, &[], BODY)), 2);
    assert_eq!(
        chunks_of(&call(a, "POST", CHAT, &[("x-mock-chunks", "3")], BODY)),
        3
    );
    assert_eq!(
        chunks_of(&call(a, "POST", &format!("{CHAT}?chunks=4"), &[], BODY)),
        4
    );
    let with_mock = r#"{"model":"m","mock":{"chunks":5}}"#;
    assert_eq!(chunks_of(&call(a, "POST", CHAT, &[], with_mock)), 5);
    // Precedence: path < header < query < body.
    let h = [("x-mock-chunks", "3")];
    assert_eq!(chunks_of(&call(a, "POST", path, &h, BODY)), 3);
    assert_eq!(
        chunks_of(&call(a, "POST", &format!("{path}?chunks=4"), &h, BODY)),
        4
    );
    let both = format!("{path}?chunks=4");
    assert_eq!(chunks_of(&call(a, "POST", &both, &h, with_mock)), 5);
    // Unknown directives are errors, except in the query string.
    assert_eq!(
        call(a, "POST", CHAT, &[("x-mock-nope", "1")], BODY).status,
        400
    );
    assert_eq!(
        call(a, "POST", &format!("{CHAT}?api-version=1"), &[], BODY).status,
        200
    );
    let s = m.stats().last_request.unwrap();
    assert_eq!(s.path, "/v1/chat/completions?api-version=1");
}

#[test]
fn status_and_retry_after() {
    let m = server();
    let a = m.addr();
    let r = call(
        a,
        "POST",
        &format!("{CHAT}?status=429&retry_after=7"),
        &[],
        BODY,
    );
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("7"));
    let e = &r.json()["error"];
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(e["param"].is_null() && e["message"].is_string());
    let r = call(a, "POST", CHAT, &[("x-mock-status", "503")], STREAM);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = call(a, "POST", "/mock/status=429/v1/messages", &[], BODY);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let r = call(a, "POST", "/v1/nothing", &[], BODY);
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    assert!(r.json()["error"]["code"].is_null());
}

#[test]
fn drop_after() {
    let m = server();
    let a = m.addr();
    let r = call(a, "POST", &format!("{CHAT}?drop_after=3"), &[], STREAM);
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert_eq!(r.events().len(), 3);
    let cases = [
        ("drop_after=1", BODY),
        ("drop_after=0", BODY),
        ("drop_after=0", STREAM),
    ];
    for (directive, body) in cases {
        let mut c = Client::connect(a);
        c.send("POST", &format!("{CHAT}?{directive}"), &[], body);
        assert!(
            c.read_response().is_err(),
            "nothing written: {directive} {body}"
        );
    }
    assert_eq!(m.stats().streams_aborted, 0, "a drop is not a client abort");
}

#[test]
fn stats_and_reset() {
    let m = server();
    let mut c = Client::connect(m.addr());
    for _ in 0..3 {
        assert_eq!(
            c.call("POST", CHAT, &[("X-Trace", "abc")], BODY).status,
            200
        );
    }
    call(m.addr(), "GET", "/v1/models", &[], "");
    let s = m.stats();
    assert_eq!(s.requests, 4);
    assert_eq!(s.total_connections, 2);
    assert!(eventually(Duration::from_secs(5), || m
        .stats()
        .open_connections
        == 1));
    let last = s.last_request.unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("GET", "/v1/models")
    );
    let over_http = call(m.addr(), "GET", "/mock/stats", &[], "").json();
    assert_eq!(over_http["requests"], 4);
    assert_eq!(over_http["last_request"]["path"], "/v1/models");
    c.call("POST", CHAT, &[("X-Trace", "abc")], BODY);
    let last = m.stats().last_request.unwrap();
    assert_eq!(last.header("x-trace"), Some("abc"));
    assert_eq!(last.body, BODY.as_bytes());
    drop(c);
    assert!(eventually(Duration::from_secs(5), || m
        .stats()
        .open_connections
        == 0));
    m.reset_stats();
    let s = m.stats();
    assert_eq!((s.requests, s.total_connections), (0, 0));
    assert!(s.last_request.is_none());
    call(m.addr(), "POST", CHAT, &[], BODY);
    assert_eq!(call(m.addr(), "POST", "/mock/reset", &[], "").status, 200);
    assert_eq!(m.stats().requests, 0);
}

#[test]
fn interval_spreads_events() {
    let m = server();
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?chunks=4&interval_ms=30"),
        &[],
        STREAM,
    );
    let n = r.chunks.len();
    assert_eq!(n, 1 + 4 + 1 + 1);
    let spread = r.chunks[n - 1].0 - r.chunks[0].0;
    assert!(
        spread >= Duration::from_millis(30 * (n as u64 - 1)),
        "{spread:?}"
    );
}

#[test]
fn latency_delays_the_head() {
    let m = server();
    let t = Instant::now();
    let r = call(
        m.addr(),
        "POST",
        "/mock/latency_ms=100/v1/chat/completions",
        &[],
        BODY,
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn client_abort_is_noticed() {
    let m = server();
    let mut c = Client::connect(m.addr());
    c.send(
        "POST",
        &format!("{CHAT}?chunks=100&interval_ms=100"),
        &[],
        STREAM,
    );
    let mut line = String::new();
    std::io::BufRead::read_line(&mut c.reader, &mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"));
    drop(c);
    let t = Instant::now();
    assert!(eventually(Duration::from_secs(3), || {
        let s = m.stats();
        s.streams_aborted == 1 && s.open_connections == 0
    }));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn hang_holds_until_client_closes() {
    let m = server();
    let mut c = Client::connect(m.addr());
    c.send("POST", CHAT, &[("x-mock-hang", "true")], BODY);
    assert!(!c.closed_within(Duration::from_millis(200)));
    assert_eq!(m.stats().open_connections, 1);
    assert_eq!(m.stats().requests, 1);
    drop(c);
    assert!(eventually(Duration::from_secs(3), || m
        .stats()
        .open_connections
        == 0));
}

#[test]
fn malformed() {
    let m = server();
    let r = call(m.addr(), "POST", &format!("{CHAT}?malformed=1"), &[], BODY);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?malformed=1&chunks=2"),
        &[],
        STREAM,
    );
    let events = r.events();
    assert_eq!(events.len(), 1 + 1 + 2 + 1 + 1);
    let bad: Vec<_> = events
        .iter()
        .filter(|(_, d)| d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .collect();
    assert_eq!(bad.len(), 1);
    assert!(r.complete);
}

#[test]
fn close_directive_and_keep_alive() {
    let m = server();
    let mut c = Client::connect(m.addr());
    let r = c.call("POST", CHAT, &[], BODY);
    assert!(r.header("connection").is_none());
    let r = c.call("POST", CHAT, &[("x-mock-close", "1")], BODY);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_within(Duration::from_secs(3)));
    assert_eq!(m.stats().total_connections, 1);
}

#[test]
fn chunked_body_expect_continue_and_pipelining() {
    let m = server();
    let mut c = Client::connect(m.addr());
    c.send_raw(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: m\r\ntransfer-encoding: chunked\r\nexpect: 100-continue\r\n\r\n",
    );
    let mut line = String::new();
    std::io::BufRead::read_line(&mut c.reader, &mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    line.clear();
    std::io::BufRead::read_line(&mut c.reader, &mut line).unwrap();
    assert_eq!(line, "\r\n");
    let body = r#"{"model":"chunky","mock":{"chunks":2}}"#;
    let (a, b) = body.split_at(10);
    c.send_raw(format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len()).as_bytes());
    let r = c.read_response().unwrap();
    assert_eq!(r.json()["model"], "chunky");
    assert_eq!(chunks_of(&r), 2);
    assert_eq!(m.stats().last_request.unwrap().body, body.as_bytes());
    // Two pipelined requests in one write.
    let one = format!(
        "POST {CHAT} HTTP/1.1\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    c.send_raw(format!("{one}{one}").as_bytes());
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(c.read_response().unwrap().status, 200);
    assert_eq!(m.stats().requests, 3);
}

#[test]
fn anthropic_messages() {
    let m = server();
    let body =
        r#"{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let j = call(m.addr(), "POST", "/v1/messages", &[], body).json();
    assert_eq!(j["type"], "message");
    assert_eq!(j["role"], "assistant");
    assert_eq!(j["model"], "claude-test");
    assert_eq!(j["content"][0]["type"], "text");
    assert_eq!(j["stop_reason"], "end_turn");
    assert!(j["stop_sequence"].is_null());
    assert_eq!(j["usage"]["input_tokens"], (body.len() / 4) as u64);
    assert_eq!(j["usage"]["output_tokens"], 8);

    let sbody = body.replace("\"max_tokens\"", "\"stream\":true,\"max_tokens\"");
    let r = call(m.addr(), "POST", "/v1/messages?chunks=3", &[], &sbody);
    assert!(r.complete);
    let names: Vec<String> = r.events().into_iter().map(|(n, _)| n).collect();
    let want = [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ];
    assert_eq!(names, want);
    let js = r.event_json();
    for (j, name) in js.iter().zip(want) {
        assert_eq!(j["type"], name);
    }
    assert_eq!(js[0]["message"]["model"], "claude-test");
    assert_eq!(
        js[0]["message"]["usage"]["input_tokens"],
        (sbody.len() / 4) as u64
    );
    assert_eq!(js[3]["delta"]["type"], "text_delta");
    assert_eq!(js[3]["delta"]["text"], "tok0 ");
    assert_eq!(js[7]["delta"]["stop_reason"], "end_turn");
    assert_eq!(js[7]["usage"]["output_tokens"], 3);
}

#[test]
fn completions_embeddings_models() {
    let m = server();
    let a = m.addr();
    let j = call(
        a,
        "POST",
        "/v1/completions",
        &[],
        r#"{"model":"t","prompt":"x"}"#,
    )
    .json();
    assert_eq!(j["object"], "text_completion");
    assert_eq!(
        j["choices"][0]["text"],
        "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
    );
    let body =
        r#"{"model":"t","prompt":"x","stream":true,"stream_options":{"include_usage":true}}"#;
    let r = call(a, "POST", "/v1/completions?chunks=2", &[], body);
    let js = r.event_json();
    assert_eq!(js.len(), 2 + 1 + 1);
    assert_eq!(js[0]["object"], "text_completion");
    assert_eq!(js[1]["choices"][0]["text"], "tok1 ");
    assert_eq!(js[2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(js[3]["usage"]["completion_tokens"], 2);

    let e = call(
        a,
        "POST",
        "/v1/embeddings",
        &[],
        r#"{"model":"e","input":["a","b","c"]}"#,
    )
    .json();
    assert_eq!(e["object"], "list");
    assert_eq!(e["model"], "e");
    assert_eq!(e["data"].as_array().unwrap().len(), 3);
    assert_eq!(e["data"][2]["index"], 2);
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 8);
    assert!(e["data"][0]["embedding"][0].is_f64());
    let e = call(a, "POST", "/v1/embeddings?dims=4", &[], r#"{"input":"a"}"#).json();
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 4);
    assert_eq!(e["usage"]["prompt_tokens"], e["usage"]["total_tokens"]);

    let models = call(a, "GET", "/v1/models", &[], "").json();
    assert_eq!(models["object"], "list");
    assert!(models["data"].as_array().unwrap().len() >= 3);
}

#[test]
fn words_embeddings_follow_the_text() {
    let m = server();
    let a = m.addr();
    let body = r#"{"model":"text-embedding-words","dimensions":256,"input":["How do I reverse a list?","how do i REVERSE a list","How do I reverse a string?"]}"#;
    let e = call(a, "POST", "/v1/embeddings", &[], body).json();
    let v: Vec<Vec<f64>> = (0..3)
        .map(|i| serde_json::from_value(e["data"][i]["embedding"].clone()).unwrap())
        .collect();
    assert_eq!(v[0].len(), 256);
    let cos = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    assert!((cos(&v[0], &v[0]) - 1.0).abs() < 1e-6);
    assert!((cos(&v[0], &v[1]) - 1.0).abs() < 1e-6);
    assert!(cos(&v[0], &v[2]) < 0.9);
    // The same text in another request, at another index, embeds the same.
    let again = r#"{"model":"text-embedding-words","dimensions":256,"input":["x","How do I reverse a list?"]}"#;
    let e2 = call(a, "POST", "/v1/embeddings", &[], again).json();
    assert_eq!(e2["data"][1]["embedding"], e["data"][0]["embedding"]);
    // Cohere's shape too; any other model keeps the per-index vectors.
    let c = r#"{"model":"embed-words","texts":["How do I reverse a list?"],"embedding_types":["float"]}"#;
    let c = call(a, "POST", "/v2/embed?dims=256", &[], c).json();
    assert_eq!(c["embeddings"]["float"][0], e["data"][0]["embedding"]);
    let plain = r#"{"model":"e","input":["same","same"]}"#;
    let p = call(a, "POST", "/v1/embeddings", &[], plain).json();
    assert_ne!(p["data"][0]["embedding"], p["data"][1]["embedding"]);
}

fn guardrail_call(texts: &[&str]) -> String {
    serde_json::json!({"policy":"pii","phase":"request","model":"gpt","key":null,
        "request_id":"req-1","texts":texts})
    .to_string()
}

#[test]
fn guardrail_webhook_verdicts() {
    let m = server();
    let a = m.addr();
    let verdict = |path: &str, texts: &[&str]| {
        let r = call(a, "POST", path, &[], &guardrail_call(texts));
        (r.status, r.json())
    };
    assert_eq!(
        verdict("/guardrail", &["hello", "world"]),
        (200, serde_json::json!({"action":"allow"}))
    );
    let (status, v) = verdict("/guardrail", &["fine", "BLOCKME please"]);
    assert_eq!((status, v["action"].as_str()), (200, Some("block")));
    assert!(v["reason"].is_string());
    let (status, v) = verdict("/guardrail", &["my REDACTME card", "no"]);
    assert_eq!(status, 200);
    assert_eq!(
        v,
        serde_json::json!({"action":"redact","texts":["my [redacted] card","no"]})
    );
    let (status, v) = verdict("/guardrail", &["FAILME"]);
    assert_eq!(status, 500);
    assert!(v["error"]["message"].is_string());
    let r = call(a, "POST", "/guardrail", &[], "{not json");
    assert_eq!(r.status, 400);
    let r = call(
        a,
        "POST",
        "/guardrail",
        &[],
        r#"{"policy":"p","phase":"request"}"#,
    );
    assert_eq!(r.status, 400);

    // Counted and recorded like every other API.
    let s = m.stats();
    assert_eq!(s.api("guardrail"), 6);
    let last = s.last_request.unwrap();
    assert_eq!(last.path, "/guardrail");
    assert_eq!(last.body, br#"{"policy":"p","phase":"request"}"#);
}

#[test]
fn guardrail_webhook_delays() {
    let m = server();
    let a = m.addr();
    let t = Instant::now();
    let r = call(
        a,
        "POST",
        "/guardrail/delay_ms=300",
        &[],
        &guardrail_call(&["x"]),
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let r = call(
        a,
        "POST",
        "/mock/latency_ms=300/guardrail",
        &[],
        &guardrail_call(&["BLOCKME"]),
    );
    assert_eq!(r.json()["action"], "block");
    let t = Instant::now();
    let r = call(
        a,
        "POST",
        "/guardrail",
        &[],
        &guardrail_call(&["SLOWME", "REDACTME"]),
    );
    assert!(t.elapsed() >= Duration::from_secs(2));
    assert_eq!(r.json()["texts"][1], "[redacted]");
    assert_eq!(m.stats().api("guardrail"), 3);
}

#[test]
fn threads_and_port_conflict() {
    let cfg = MockConfig {
        threads: 3,
        ..MockConfig::default()
    };
    let m = MockServer::start(cfg).unwrap();
    assert!(m.base_url().starts_with("http://127.0.0.1:"));
    for _ in 0..20 {
        assert_eq!(call(m.addr(), "POST", CHAT, &[], BODY).status, 200);
    }
    assert_eq!(m.stats().requests, 20);
    let clash = MockConfig {
        listen: m.addr(),
        threads: 2,
        ..MockConfig::default()
    };
    assert!(MockServer::start(clash).is_err());
}

#[test]
fn drop_stops_the_server() {
    let m = server();
    let addr = m.addr();
    let mut c = Client::connect(addr);
    assert_eq!(c.call("POST", CHAT, &[], BODY).status, 200);
    let mut h = Client::connect(addr);
    h.send("POST", &format!("{CHAT}?hang=1"), &[], BODY);
    drop(m);
    assert!(c.closed_within(Duration::from_secs(3)));
    assert!(h.closed_within(Duration::from_secs(3)));
    assert!(eventually(Duration::from_secs(3), || {
        std::net::TcpStream::connect(addr).is_err()
    }));
}

#[test]
fn binary_prints_address_and_exits_on_sigterm() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--listen", "127.0.0.1:0", "--threads", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("ready line");
    let r = call(addr.parse().unwrap(), "POST", CHAT, &[], BODY);
    assert_eq!(r.status, 200);
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}

// === Tool calls, thinking and stop reasons ===

#[test]
fn openai_tool_calls_json() {
    let m = server();
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?tools=2"),
        &[],
        OPENAI_TOOLS,
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    let choice = &j["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    assert_eq!(choice["message"]["role"], "assistant");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (i, (c, name)) in calls.iter().zip(["lookup", "search"]).enumerate() {
        assert_eq!(c["id"], format!("call_mock{i}"));
        assert_eq!(c["type"], "function");
        assert_eq!(c["function"]["name"], name);
        check_arguments(c["function"]["arguments"].as_str().unwrap(), i);
    }
    assert!(j["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    // The mock still records what it was sent.
    assert_eq!(
        m.stats().last_request.unwrap().body,
        OPENAI_TOOLS.as_bytes()
    );

    // More calls than declared tools cycle through them; no tools at all gives get_weather.
    let j = call(
        m.addr(),
        "POST",
        CHAT,
        &[("x-mock-tools", "3")],
        OPENAI_TOOLS,
    )
    .json();
    let names: Vec<_> = j["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["function"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["lookup", "search", "lookup"]);
    let j = call(
        m.addr(),
        "POST",
        "/mock/tools=1/v1/chat/completions",
        &[],
        BODY,
    )
    .json();
    assert_eq!(
        j["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(
        call(m.addr(), "POST", &format!("{CHAT}?tools=9"), &[], BODY).status,
        400
    );
}

#[test]
fn openai_tool_calls_stream() {
    let m = server();
    let body = streamed(OPENAI_TOOLS);
    let r = call(m.addr(), "POST", &format!("{CHAT}?tools=2"), &[], &body);
    assert!(r.complete);
    assert_eq!(r.events().last().unwrap().1, "[DONE]");
    let js = r.event_json();
    assert_eq!(js[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(content(&js).is_empty(), "no text in a tool-call answer");
    let calls = openai_calls(&js);
    assert_eq!(calls.len(), 2);
    for (i, (c, name)) in calls.iter().zip(["lookup", "search"]).enumerate() {
        assert_eq!(c.id, format!("call_mock{i}"));
        assert_eq!(c.name, name);
        assert!(c.fragments >= 2, "arguments in pieces: {}", c.fragments);
        check_arguments(&c.arguments, i);
    }
    let (usage, rest) = js.split_last().unwrap();
    let finish = rest.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(finish["choices"][0]["delta"], serde_json::json!({}));
    for j in &rest[..rest.len() - 1] {
        assert!(j["choices"][0]["finish_reason"].is_null());
    }
    assert_eq!(usage["choices"], serde_json::json!([]));
    let fragments: usize = calls.iter().map(|c| c.fragments).sum();
    assert_eq!(usage["usage"]["completion_tokens"], fragments as u64);

    // Even chunks=1 splits the arguments in two; the JSON form agrees on the tokens.
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?tools=1&chunks=1"),
        &[],
        &body,
    );
    let calls = openai_calls(&r.event_json());
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].fragments, 2);
    check_arguments(&calls[0].arguments, 0);
    let j = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?tools=1&chunks=1"),
        &[],
        OPENAI_TOOLS,
    );
    assert_eq!(j.json()["usage"]["completion_tokens"], 2);
}

#[test]
fn openai_reasoning_first() {
    let m = server();
    let body = r#"{"model":"o-test","reasoning_effort":"high","messages":[{"role":"user","content":"hi"}]}"#;
    let j = call(m.addr(), "POST", &format!("{CHAT}?chunks=2"), &[], body).json();
    let msg = &j["choices"][0]["message"];
    assert_eq!(msg["reasoning_content"], THOUGHT);
    assert_eq!(msg["content"], "tok0 tok1 ");
    assert_eq!(
        j["usage"]["completion_tokens_details"]["reasoning_tokens"],
        3
    );
    assert_eq!(j["usage"]["completion_tokens"], 3 + 2);
    // Without reasoning_effort, only the directive turns it on.
    let j = call(m.addr(), "POST", CHAT, &[], BODY).json();
    assert!(
        j["choices"][0]["message"]
            .get("reasoning_content")
            .is_none()
    );
    assert!(j["usage"].get("completion_tokens_details").is_none());
    let j = call(m.addr(), "POST", &format!("{CHAT}?thinking"), &[], BODY).json();
    assert_eq!(j["choices"][0]["message"]["reasoning_content"], THOUGHT);

    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?chunks=2"),
        &[],
        &streamed(body),
    );
    let js = r.event_json();
    let kinds: Vec<&str> = js
        .iter()
        .filter_map(|j| {
            let d = &j["choices"][0]["delta"];
            if d["reasoning_content"].is_string() {
                Some("reasoning")
            } else if d["content"].as_str().is_some_and(|c| !c.is_empty()) {
                Some("content")
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        kinds,
        ["reasoning", "reasoning", "reasoning", "content", "content"]
    );
    let reasoning: String = js
        .iter()
        .filter_map(|j| j["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, THOUGHT);
    assert_eq!(content(&js), "tok0 tok1 ");
    let usage = &js.last().unwrap()["usage"];
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 3);

    // Reasoning then tool calls.
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?thinking&tools=2"),
        &[],
        &streamed(OPENAI_TOOLS),
    );
    let js = r.event_json();
    let first_call = js
        .iter()
        .position(|j| j["choices"][0]["delta"]["tool_calls"].is_array())
        .unwrap();
    let last_reasoning = js
        .iter()
        .rposition(|j| j["choices"][0]["delta"]["reasoning_content"].is_string())
        .unwrap();
    assert!(last_reasoning < first_call);
    assert_eq!(openai_calls(&js).len(), 2);
}

#[test]
fn openai_stop_reason() {
    let m = server();
    let a = m.addr();
    let finish = |path: &str, body: &str| -> Value {
        call(a, "POST", path, &[], body).json()["choices"][0]["finish_reason"].clone()
    };
    assert_eq!(
        finish(&format!("{CHAT}?stop_reason=max_tokens"), BODY),
        "length"
    );
    assert_eq!(
        finish(&format!("{CHAT}?stop_reason=stop_sequence"), BODY),
        "stop"
    );
    assert_eq!(
        finish(&format!("{CHAT}?stop_reason=end_turn&tools=1"), BODY),
        "stop"
    );
    assert_eq!(
        finish(
            "/v1/completions?stop_reason=max_tokens",
            r#"{"prompt":"x"}"#
        ),
        "length"
    );
    assert_eq!(
        call(a, "POST", &format!("{CHAT}?stop_reason=length"), &[], BODY).status,
        400
    );
    let r = call(
        a,
        "POST",
        &format!("{CHAT}?stop_reason=max_tokens&tools=1"),
        &[],
        STREAM,
    );
    let js = r.event_json();
    let reasons: Vec<_> = js
        .iter()
        .filter(|j| !j["choices"][0]["finish_reason"].is_null())
        .map(|j| j["choices"][0]["finish_reason"].clone())
        .collect();
    assert_eq!(reasons, ["length"]);
    assert_eq!(openai_calls(&js).len(), 1);
}

#[test]
fn anthropic_tool_use_json() {
    let m = server();
    let r = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?tools=2"),
        &[],
        ANTHROPIC_TOOLS,
    );
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["stop_reason"], "tool_use");
    assert!(j["stop_sequence"].is_null());
    let content = j["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    for (i, (b, name)) in content.iter().zip(["lookup", "search"]).enumerate() {
        assert_eq!(b["type"], "tool_use");
        assert_eq!(b["id"], format!("toolu_mock{i}"));
        assert_eq!(b["name"], name);
        assert!(b["input"].is_object());
        assert_eq!(b["input"]["call"], i as u64);
    }
    assert!(j["usage"]["output_tokens"].as_u64().unwrap() > 0);
    let recorded = m.stats().last_request.unwrap();
    assert_eq!(
        (recorded.path.as_str(), recorded.body.as_slice()),
        ("/v1/messages?tools=2", ANTHROPIC_TOOLS.as_bytes())
    );
}

#[test]
fn anthropic_tool_use_stream() {
    let m = server();
    let r = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?tools=2"),
        &[],
        &streamed(ANTHROPIC_TOOLS),
    );
    let (blocks, delta) = anthropic_stream(&r);
    assert_eq!(blocks.len(), 2);
    for (i, (b, name)) in blocks.iter().zip(["lookup", "search"]).enumerate() {
        assert_eq!(b.start["type"], "tool_use");
        assert_eq!(b.start["id"], format!("toolu_mock{i}"));
        assert_eq!(b.start["name"], name);
        assert_eq!(b.start["input"], serde_json::json!({}));
        assert!(b.deltas >= 2, "partial_json in pieces: {}", b.deltas);
        check_arguments(&b.text, i);
    }
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    let deltas: usize = blocks.iter().map(|b| b.deltas).sum();
    assert_eq!(delta["usage"]["output_tokens"], deltas as u64);
    // The JSON form of the same answer counts the same tokens.
    let j = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?tools=2"),
        &[],
        ANTHROPIC_TOOLS,
    )
    .json();
    assert_eq!(j["usage"]["output_tokens"], deltas as u64);
}

#[test]
fn anthropic_thinking_first() {
    let m = server();
    let j = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?chunks=2"),
        &[],
        ANTHROPIC_THINKING,
    )
    .json();
    let id = j["id"]
        .as_str()
        .unwrap()
        .strip_prefix("msg_mock")
        .unwrap()
        .to_string();
    let c = &j["content"];
    assert_eq!(c[0]["type"], "thinking");
    assert_eq!(c[0]["thinking"], THOUGHT);
    assert_eq!(c[0]["signature"], format!("sig-mock-{id}"));
    assert_eq!(c[1]["type"], "text");
    assert_eq!(c[1]["text"], "tok0 tok1 ");
    assert_eq!(j["stop_reason"], "end_turn");
    assert_eq!(j["usage"]["output_tokens"], 3 + 2);
    // thinking=0 overrides the body.
    let j = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?thinking=0"),
        &[],
        ANTHROPIC_THINKING,
    )
    .json();
    assert_eq!(j["content"].as_array().unwrap().len(), 1);
    assert_eq!(j["content"][0]["type"], "text");

    let r = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?chunks=2"),
        &[],
        &streamed(ANTHROPIC_THINKING),
    );
    let names: Vec<String> = r.events().into_iter().map(|(n, _)| n).collect();
    let mut want = vec!["message_start", "content_block_start", "ping"];
    want.extend(["content_block_delta"; 4]);
    want.extend(["content_block_stop", "content_block_start"]);
    want.extend(["content_block_delta"; 2]);
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, want);
    let (blocks, delta) = anthropic_stream(&r);
    let id = r.event_json()[0]["message"]["id"].as_str().unwrap()["msg_mock".len()..].to_string();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].start["type"], "thinking");
    assert_eq!(blocks[0].start["thinking"], "");
    assert_eq!(blocks[0].text, THOUGHT);
    assert_eq!(blocks[0].deltas, 3 + 1);
    assert_eq!(blocks[0].signature, format!("sig-mock-{id}"));
    assert_eq!(blocks[1].start["type"], "text");
    assert_eq!(blocks[1].text, "tok0 tok1 ");
    assert_eq!(delta["usage"]["output_tokens"], 3 + 2);

    // Thinking, then tool calls: blocks 0, 1, 2.
    let body = streamed(ANTHROPIC_TOOLS).replacen(
        '{',
        r#"{"thinking":{"type":"enabled","budget_tokens":1024},"#,
        1,
    );
    let r = call(m.addr(), "POST", &format!("{MESSAGES}?tools=2"), &[], &body);
    let (blocks, delta) = anthropic_stream(&r);
    let kinds: Vec<_> = blocks
        .iter()
        .map(|b| b.start["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["thinking", "tool_use", "tool_use"]);
    assert_eq!(blocks[2].start["name"], "search");
    check_arguments(&blocks[2].text, 1);
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
}

#[test]
fn anthropic_stop_reason() {
    let m = server();
    let body =
        r#"{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let j = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?stop_reason=stop_sequence"),
        &[],
        body,
    )
    .json();
    assert_eq!(j["stop_reason"], "stop_sequence");
    assert_eq!(j["stop_sequence"], "###");
    let j = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?stop_reason=max_tokens&tools=1"),
        &[],
        body,
    )
    .json();
    assert_eq!(j["stop_reason"], "max_tokens");
    assert!(j["stop_sequence"].is_null());
    assert_eq!(j["content"][0]["type"], "tool_use");

    let sbody = streamed(body);
    let r = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?stop_reason=stop_sequence"),
        &[],
        &sbody,
    );
    let (_, delta) = anthropic_stream(&r);
    assert_eq!(delta["delta"]["stop_reason"], "stop_sequence");
    assert_eq!(delta["delta"]["stop_sequence"], "###");
    let r = call(
        m.addr(),
        "POST",
        &format!("{MESSAGES}?stop_reason=max_tokens"),
        &[],
        &sbody,
    );
    let (_, delta) = anthropic_stream(&r);
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert!(delta["delta"]["stop_sequence"].is_null());
}

#[test]
fn tool_streams_honour_stream_faults() {
    let m = server();
    let a = m.addr();
    let body = streamed(ANTHROPIC_TOOLS);
    let r = call(
        a,
        "POST",
        &format!("{MESSAGES}?tools=2&drop_after=5"),
        &[],
        &body,
    );
    assert!(!r.complete);
    assert_eq!(r.events().len(), 5);
    let r = call(
        a,
        "POST",
        &format!("{MESSAGES}?tools=1&malformed"),
        &[],
        &body,
    );
    let bad = r
        .events()
        .iter()
        .filter(|(_, d)| serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(bad, 1);
    let r = call(
        a,
        "POST",
        &format!("{CHAT}?tools=1&chunks=3&interval_ms=20"),
        &[],
        STREAM,
    );
    let n = r.chunks.len();
    assert_eq!(
        n,
        1 + 1 + 3 + 1 + 1,
        "role, call start, 3 fragments, finish, done"
    );
    let spread = r.chunks[n - 1].0 - r.chunks[0].0;
    assert!(
        spread >= Duration::from_millis(20 * (n as u64 - 1)),
        "{spread:?}"
    );
}
