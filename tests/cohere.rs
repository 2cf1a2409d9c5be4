//! Black-box: the real binary in front of a Cohere v2 provider (the mock's `/v2/chat`), for
//! OpenAI and Anthropic clients — what the provider receives, whole answers and streams of
//! text and tool calls translated into each client's shape, usage, and errors.

mod common;

use common::http::{self, Client, sse_data};
use common::{ADMIN, Driver, Gateway, UPSTREAM_KEY, config, mock};
use serde_json::Value;

/// The common config plus `co` (a Cohere provider on the mock) behind alias `command`,
/// `co-tools` (whose answers are two tool calls of 200 bytes of arguments) behind
/// `command-tools`, and `co-busy`, whose every answer is a 429, behind `command-busy`. The
/// mock's directives go in the provider's path: a translated body carries no `mock` member.
fn cohere_config(base: &str) -> String {
    let extra = format!(
        r#"  co:
    protocol: cohere
    base_url: {base}
    api_key: {{ env: UPSTREAM_KEY }}
  co-tools:
    protocol: cohere
    base_url: {base}/mock/tools=2,tool_args=200
    api_key: {{ env: UPSTREAM_KEY }}
  co-busy:
    protocol: cohere
    base_url: {base}/mock/status=429
    api_key: {{ env: UPSTREAM_KEY }}
models:
  command:
    targets:
      - {{ provider: co, model: command-up }}
  command-tools:
    targets:
      - {{ provider: co-tools, model: command-up }}
  command-busy:
    targets:
      - {{ provider: co-busy, model: command-up }}
"#
    );
    config(base, "").replacen("models:\n", &extra, 1)
}

fn post(gw: &Gateway, path: &str, body: &str) -> http::Response {
    let auth = format!("Bearer {ADMIN}");
    http::request(
        gw.api,
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("x-api-key", ADMIN),
            ("anthropic-version", "2023-06-01"),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// The SSE data of a streamed request, after a 200 and a clean end.
fn stream(gw: &Gateway, path: &str, body: &str) -> Vec<String> {
    let mut c = Client::connect(gw.api);
    let auth = format!("Bearer {ADMIN}");
    c.send(
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("x-api-key", ADMIN),
            ("anthropic-version", "2023-06-01"),
        ],
        body.as_bytes(),
    );
    let (status, _) = c.read_head().unwrap();
    assert_eq!(status, 200);
    let (chunks, clean) = c.read_stream();
    assert!(clean, "the client's stream ends cleanly");
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    sse_data(&all)
}

fn events(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .map(|d| common::json(d.as_bytes()))
        .collect()
}

#[test]
fn an_openai_client_gets_a_cohere_answer_in_its_shape() {
    let m = mock();
    let gw = Gateway::start(&cohere_config(&m.base_url()), Driver::Uring);
    let r = post(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"command","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"max_tokens":50}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["usage"]["completion_tokens"], 8);
    assert!(j["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = m.stats().last_request.expect("the mock saw the request");
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    let body = common::json(&sent.body);
    assert_eq!(body["model"], "command-up");
    assert_eq!(body["max_tokens"], 50);
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][1]["role"], "user");
}

#[test]
fn streams_of_text_and_tool_calls_reach_openai_clients() {
    let m = mock();
    let gw = Gateway::start(&cohere_config(&m.base_url()), Driver::Uring);
    let data = stream(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"command","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let ev = events(&data);
    let text: String = ev
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ");
    assert!(
        ev.iter()
            .any(|e| e["choices"][0]["finish_reason"] == "stop")
    );
    let usage = ev
        .iter()
        .find(|e| e["usage"].is_object())
        .expect("a usage chunk");
    assert_eq!(usage["usage"]["completion_tokens"], 8);

    let data = stream(
        &gw,
        "/v1/chat/completions",
        r#"{"model":"command-tools","stream":true,"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"weather?"}]}"#,
    );
    let ev = events(&data);
    let mut args = [String::new(), String::new()];
    for e in &ev {
        for call in e["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(a) = call["function"]["arguments"].as_str() {
                args[i].push_str(a);
            }
        }
    }
    for (i, a) in args.iter().enumerate() {
        let v: Value = serde_json::from_str(a).unwrap_or_else(|e| panic!("call {i}: {e}: {a}"));
        assert_eq!(v["call"], i as u64);
        assert_eq!(a.len(), 200);
    }
    assert!(
        ev.iter()
            .any(|e| e["choices"][0]["finish_reason"] == "tool_calls")
    );
}

#[test]
fn an_anthropic_client_gets_a_cohere_answer_in_its_shape() {
    let m = mock();
    let gw = Gateway::start(&cohere_config(&m.base_url()), Driver::Uring);
    let r = post(
        &gw,
        "/v1/messages",
        r#"{"model":"command","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["type"], "message");
    assert_eq!(j["content"][0]["type"], "text");
    assert_eq!(j["stop_reason"], "end_turn");
    assert_eq!(j["usage"]["output_tokens"], 8);
    let data = stream(
        &gw,
        "/v1/messages",
        r#"{"model":"command","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let ev = events(&data);
    assert_eq!(ev.first().unwrap()["type"], "message_start");
    assert_eq!(ev.last().unwrap()["type"], "message_stop");
    let text: String = ev
        .iter()
        .filter_map(|e| e["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ");
}

#[test]
fn cohere_errors_reach_each_client_in_its_shape() {
    let m = mock();
    let gw = Gateway::start(&cohere_config(&m.base_url()), Driver::Uring);
    let body =
        r#"{"model":"command-busy","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;
    let r = post(&gw, "/v1/chat/completions", body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    let r = post(&gw, "/v1/messages", body);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    // Embeddings through Cohere's /v2/embed, written back as OpenAI's list, base64 included.
    let r = post(
        &gw,
        "/v1/embeddings",
        r#"{"model":"command","input":["hello","world"],"encoding_format":"base64"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert!(v["data"][1]["embedding"].is_string(), "{v}");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{v}");
    // A token-array input has no text to give Cohere: a clear 400.
    let r = post(
        &gw,
        "/v1/embeddings",
        r#"{"model":"command","input":[[1,2]]}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("token arrays"), "{}", r.text());
}
