//! Requests and stream readers the mock's test suites share: the bodies they send, and
//! parsers for streamed tool calls and Anthropic content blocks.

#![allow(dead_code)]

use serde_json::Value;

use super::Resp;

pub const CHAT: &str = "/v1/chat/completions";
pub const BODY: &str =
    r#"{"model":"gpt-test","messages":[{"role":"user","content":"hello there"}]}"#;
pub const STREAM: &str =
    r#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
pub const STREAM_USAGE: &str = r#"{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;

pub const OPENAI_TOOLS: &str = r#"{"model":"gpt-test","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object"}}},{"type":"function","function":{"name":"search","parameters":{"type":"object"}}}]}"#;
pub const ANTHROPIC_TOOLS: &str = r#"{"model":"claude-test","max_tokens":100,"messages":[{"role":"user","content":"weather?"}],"tools":[{"name":"lookup","input_schema":{"type":"object"}},{"name":"search","input_schema":{"type":"object"}}]}"#;
pub const ANTHROPIC_THINKING: &str = r#"{"model":"claude-test","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"hi"}]}"#;
pub const MESSAGES: &str = "/v1/messages";
pub const THOUGHT: &str = "Let me think step by step.";

/// `body` with `"stream":true` (and OpenAI's `include_usage`) added.
pub fn streamed(body: &str) -> String {
    let extra = if body.contains("claude") {
        r#"{"stream":true,"#
    } else {
        r#"{"stream":true,"stream_options":{"include_usage":true},"#
    };
    body.replacen('{', extra, 1)
}

/// Tool-call arguments must be a JSON object with the call's index.
pub fn check_arguments(args: &str, call: usize) {
    let v: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{e}: {args}"));
    assert!(v.is_object(), "{args}");
    assert_eq!(v["call"], call as u64, "{args}");
}

/// One OpenAI tool call reassembled from stream chunks.
pub struct StreamedCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub fragments: usize,
}

/// Reassembles the tool calls of OpenAI chunks, checking each starts with a chunk that has its
/// index, id, type and name with empty arguments, followed by argument-only fragments.
pub fn openai_calls(js: &[Value]) -> Vec<StreamedCall> {
    let mut calls: Vec<StreamedCall> = Vec::new();
    for j in js {
        let Some(tcs) = j["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        assert_eq!(tcs.len(), 1, "{j}");
        let tc = &tcs[0];
        let i = tc["index"].as_u64().expect("index") as usize;
        let args = tc["function"]["arguments"].as_str().expect("arguments");
        if i == calls.len() {
            assert_eq!(tc["type"], "function", "{tc}");
            assert_eq!(args, "", "first chunk of a call has empty arguments");
            calls.push(StreamedCall {
                id: tc["id"].as_str().expect("id").to_string(),
                name: tc["function"]["name"].as_str().expect("name").to_string(),
                arguments: String::new(),
                fragments: 0,
            });
        } else {
            assert_eq!(
                i + 1,
                calls.len(),
                "fragments follow their call's first chunk"
            );
            assert!(tc.get("id").is_none() && tc["function"].get("name").is_none());
            calls[i].arguments.push_str(args);
            calls[i].fragments += 1;
        }
    }
    calls
}

/// One Anthropic content block reassembled from stream events.
#[derive(Default)]
pub struct StreamedBlock {
    pub start: Value,
    /// Text, thinking or partial JSON, concatenated.
    pub text: String,
    pub signature: String,
    pub deltas: usize,
}

/// Checks the Anthropic event sequence (names match types, message_start first, message_delta
/// and message_stop last, blocks opened and closed in turn with indices 0, 1, 2...) and
/// returns the blocks and the message_delta.
pub fn anthropic_stream(r: &Resp) -> (Vec<StreamedBlock>, Value) {
    assert!(r.complete);
    let events = r.events();
    let js = r.event_json();
    for ((name, _), j) in events.iter().zip(&js) {
        assert_eq!(j["type"], name.as_str());
    }
    assert_eq!(js[0]["type"], "message_start");
    let n = js.len();
    assert_eq!(js[n - 2]["type"], "message_delta");
    assert_eq!(js[n - 1]["type"], "message_stop");
    let mut blocks: Vec<StreamedBlock> = Vec::new();
    let mut open = false;
    for j in &js[1..n - 2] {
        match j["type"].as_str().unwrap() {
            "ping" => {}
            "content_block_start" => {
                assert!(!open, "a block starts while another is open");
                assert_eq!(j["index"], blocks.len() as u64, "consecutive indices");
                open = true;
                blocks.push(StreamedBlock {
                    start: j["content_block"].clone(),
                    ..StreamedBlock::default()
                });
            }
            "content_block_delta" => {
                assert!(open);
                assert_eq!(j["index"], blocks.len() as u64 - 1);
                let b = blocks.last_mut().unwrap();
                let d = &j["delta"];
                let kind = b.start["type"].as_str().unwrap();
                match d["type"].as_str().unwrap() {
                    "text_delta" if kind == "text" => b.text += d["text"].as_str().unwrap(),
                    "thinking_delta" if kind == "thinking" => {
                        assert!(b.signature.is_empty(), "signature comes last");
                        b.text += d["thinking"].as_str().unwrap();
                    }
                    "signature_delta" if kind == "thinking" => {
                        b.signature += d["signature"].as_str().unwrap()
                    }
                    "input_json_delta" if kind == "tool_use" => {
                        b.text += d["partial_json"].as_str().unwrap()
                    }
                    other => panic!("{other} delta in a {kind} block"),
                }
                b.deltas += 1;
            }
            "content_block_stop" => {
                assert!(open);
                assert_eq!(j["index"], blocks.len() as u64 - 1);
                open = false;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(!open);
    (blocks, js[n - 2].clone())
}

/// The text of an OpenAI stream's content deltas.
pub fn content(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// Output tokens of a JSON answer: the mock sends one per chunk.
pub fn chunks_of(r: &Resp) -> usize {
    r.json()["usage"]["completion_tokens"].as_u64().unwrap() as usize
}
