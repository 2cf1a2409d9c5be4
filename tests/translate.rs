//! Black-box: the real binary translating between wire protocols against the mock upstream —
//! what the provider receives (its auth header, version header, body), what the client gets
//! when a translated stream breaks, and errors in the ingress's own shape. The SDK suite
//! (tests/sdk/test_translation.py) covers the round trips as the official clients see them.

mod common;

use common::http::{self, Client, sse_data};
use common::{ADMIN, Driver, Gateway, UPSTREAM_KEY, config, mock};

/// The common config plus providers on the same mock: Anthropic `claude` plain and
/// `claude-drop` whose streams the mock cuts after two events, and OpenAI `up-down` that
/// always answers 503.
fn translate_config(base: &str) -> String {
    let cfg = config(base, "");
    let extra = format!(
        r#"  claude:
    protocol: anthropic
    base_url: {base}
    api_key: {{ env: UPSTREAM_KEY }}
    anthropic_beta: [beta-one]
  claude-drop:
    protocol: anthropic
    base_url: {base}/mock/drop_after=2,interval_ms=5
    api_key: {{ env: UPSTREAM_KEY }}
  claude-bad:
    protocol: anthropic
    base_url: {base}/mock/malformed
    api_key: {{ env: UPSTREAM_KEY }}
  up-down:
    protocol: openai
    base_url: {base}/mock/status=503/v1
models:
  gpt-down:
    targets:
      - {{ provider: up-down, model: upstream-mini }}
  claude:
    targets:
      - {{ provider: claude, model: claude-up }}
  claude-drop:
    targets:
      - {{ provider: claude-drop, model: claude-up }}
  claude-bad:
    targets:
      - {{ provider: claude-bad, model: claude-up }}
"#
    );
    cfg.replacen("models:\n", &extra, 1)
}

fn post(gw: &Gateway, path: &str, body: &str) -> http::Response {
    let auth = format!("Bearer {ADMIN}");
    http::request(
        gw.api,
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn the_anthropic_provider_gets_its_own_headers_and_body() {
    let m = mock();
    let gw = Gateway::start(&translate_config(&m.base_url()), Driver::Uring);
    let r = post(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"claude","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"seed":3}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-shardgate-dropped"), Some("seed"));
    assert_eq!(r.json()["object"], "chat.completion");
    let sent = m.stats().last_request.expect("the mock saw the request");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("anthropic-beta"), Some("beta-one"));
    assert_eq!(
        sent.header("authorization"),
        None,
        "the client's key never goes upstream"
    );
    let body = common::json(&sent.body);
    assert_eq!(body["model"], "claude-up");
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 4096);
    assert!(body.get("seed").is_none());
}

#[test]
fn anthropic_to_anthropic_is_a_byte_passthrough() {
    let m = mock();
    let gw = Gateway::start(&translate_config(&m.base_url()), Driver::Uring);
    let body = r#"{"model":"claude", "max_tokens":16,"messages":[{"role":"user","content":"hé"}],"x_unknown":{"kept":true}}"#;
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[("x-api-key", ADMIN), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["type"], "message");
    let sent = m.stats().last_request.unwrap();
    assert_eq!(
        sent.body,
        body.replace("\"claude\"", "\"claude-up\"").as_bytes()
    );
}

/// Streams a chat for `model` from an OpenAI client; asserts a 200 and a clean end, and returns
/// the response headers and the SSE data lines.
fn stream_chat(gw: &Gateway, model: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut c = Client::connect(gw.api);
    let auth = format!("Bearer {ADMIN}");
    let body = format!(
        r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"stream":true}}"#
    );
    c.send(
        "POST",
        "/v1/chat/completions",
        &[("authorization", &auth)],
        body.as_bytes(),
    );
    let (status, headers) = c.read_head().unwrap();
    assert_eq!(status, 200);
    let (chunks, clean) = c.read_stream();
    assert!(clean, "the client's stream ends cleanly");
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    (headers, sse_data(&all))
}

fn assert_ends_with_error(events: &[String], code: &str) {
    let last = common::json(events.last().expect("events").as_bytes());
    assert_eq!(last["error"]["code"], code, "{events:?}");
}

fn broken_translated_stream_ends_with_an_error_event(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&translate_config(&m.base_url()), d);
    let (_, events) = stream_chat(&gw, "claude-drop");
    assert_ends_with_error(&events, "upstream_protocol_error");
    assert!(events.iter().all(|e| e != "[DONE]"));
}

/// The upstream's head and a broken event arrive together, so the translation fails before the
/// client's head has been written: the client still gets the head, then the error event.
fn stream_broken_in_its_first_read_keeps_the_head(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&translate_config(&m.base_url()), d);
    let (headers, events) = stream_chat(&gw, "claude-bad");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{headers:?}"
    );
    assert_ends_with_error(&events, "upstream_protocol_error");
}

fn openai_upstream_errors_reach_anthropic_clients_in_their_shape(d: Driver) {
    let m = mock();
    let gw = Gateway::start(&translate_config(&m.base_url()), d);
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[("x-api-key", ADMIN)],
        br#"{"model":"gpt-down","max_tokens":8,"messages":[{"role":"user","content":"hi"}],"stream":true}"#,
    );
    assert_eq!(r.status, 502, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "api_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"up-down\""),
        "{v}"
    );
    let r = http::request(
        gw.api,
        "POST",
        "/v1/messages",
        &[("x-api-key", ADMIN)],
        br#"{"model":"nope","max_tokens":8,"messages":[]}"#,
    );
    assert_eq!(r.status, 404);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    let r = http::request(gw.api, "GET", "/v1/messages", &[("x-api-key", ADMIN)], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

both_drivers!(
    broken_translated_stream_ends_with_an_error_event,
    stream_broken_in_its_first_read_keeps_the_head,
    openai_upstream_errors_reach_anthropic_clients_in_their_shape,
);
