//! Black-box tests of the usage directives: `cached_tokens=N` and `reasoning_tokens=N` make the
//! mock report prompt-cache reads and reasoning tokens in each protocol's own shape, in JSON
//! bodies and in streams, so a gateway's accounting of them can be checked end to end.

mod support;

use serde_json::Value;
use support::chat::*;
use support::{call, server};

const CLAUDE: &str =
    r#"{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;

fn estimate(body: &str) -> u64 {
    (body.len() / 4) as u64
}

/// The usage of an OpenAI stream's last chunk (the one `include_usage` adds).
fn last_usage(chunks: &[Value]) -> Value {
    chunks.last().expect("chunks")["usage"].clone()
}

#[test]
fn openai_cached_tokens_are_part_of_prompt_tokens() {
    let m = server();
    let path = format!("{CHAT}?cached_tokens=1500");
    let u = &call(m.addr(), "POST", &path, &[], BODY).json()["usage"];
    let prompt = estimate(BODY) + 1500;
    assert_eq!(u["prompt_tokens"], prompt);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 1500);
    assert_eq!(u["completion_tokens"], 8);
    assert_eq!(u["total_tokens"], prompt + 8);
    // Without the directive there are no details at all, as before.
    let u = &call(m.addr(), "POST", CHAT, &[], BODY).json()["usage"];
    assert!(u.get("prompt_tokens_details").is_none(), "{u}");

    // Streamed: the `include_usage` chunk carries the same counts.
    let body = streamed(BODY);
    let r = call(m.addr(), "POST", &path, &[], &body);
    let u = last_usage(&r.event_json());
    assert_eq!(u["prompt_tokens"], estimate(&body) + 1500);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 1500);
}

#[test]
fn openai_reasoning_tokens_are_part_of_completion_tokens() {
    let m = server();
    // A plain answer of 4 pieces, reported with 100 reasoning tokens before it.
    let path = format!("{CHAT}?chunks=4&reasoning_tokens=100");
    let u = &call(m.addr(), "POST", &path, &[], BODY).json()["usage"];
    assert_eq!(u["completion_tokens"], 4 + 100);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 100);
    // With thinking on, the directive replaces the answer's own reasoning count (3 pieces).
    let path = format!("{CHAT}?chunks=4&thinking&reasoning_tokens=50&cached_tokens=7");
    let r = call(m.addr(), "POST", &path, &[], &streamed(BODY));
    let u = last_usage(&r.event_json());
    assert_eq!(u["completion_tokens"], 4 + 50);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 50);
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 7);
}

#[test]
fn anthropic_cache_reads_are_outside_input_tokens() {
    let m = server();
    let path = format!("{MESSAGES}?cached_tokens=20000");
    let u = &call(m.addr(), "POST", &path, &[], CLAUDE).json()["usage"];
    assert_eq!(u["input_tokens"], estimate(CLAUDE));
    assert_eq!(u["cache_read_input_tokens"], 20000);
    assert_eq!(u["output_tokens"], 8);

    let body = streamed(CLAUDE);
    let r = call(m.addr(), "POST", &path, &[], &body);
    let js = r.event_json();
    let start = &js[0]["message"]["usage"];
    assert_eq!(start["input_tokens"], estimate(&body));
    assert_eq!(start["cache_read_input_tokens"], 20000);
    let delta = js.iter().find(|j| j["type"] == "message_delta").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 8);
}

#[test]
fn anthropic_reasoning_tokens_only_move_output_tokens() {
    let m = server();
    let path = format!("{MESSAGES}?chunks=2&reasoning_tokens=30");
    let u = &call(m.addr(), "POST", &path, &[], CLAUDE).json()["usage"];
    // Anthropic reports no reasoning count: thinking is inside output_tokens.
    assert_eq!(u["output_tokens"], 2 + 30);
    assert!(u.get("cache_read_input_tokens").is_none(), "{u}");
    let r = call(m.addr(), "POST", &path, &[], &streamed(CLAUDE));
    let js = r.event_json();
    let delta = js.iter().find(|j| j["type"] == "message_delta").unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 2 + 30);
}

#[test]
fn usage_directives_come_from_every_source() {
    let m = server();
    let u = &call(
        m.addr(),
        "POST",
        &format!("/mock/cached_tokens=3{CHAT}"),
        &[("x-mock-reasoning-tokens", "2")],
        BODY,
    )
    .json()["usage"];
    assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 3);
    assert_eq!(u["completion_tokens_details"]["reasoning_tokens"], 2);
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?cached_tokens=x"),
        &[],
        BODY,
    );
    assert_eq!(r.status, 400);
}
