//! Unit tests of `providers::anthropic::upstream`.

use super::*;
use crate::providers::canonical::{Effort, Tool};

const STAMP: Stamp<'static> = Stamp {
    model: "claude-sonnet-4-5",
    created: 1_700_000_000,
    default_max_tokens: 4096,
    id: "",
};

fn value(s: &str) -> simd_json::OwnedValue {
    simd_json::to_owned_value(&mut s.as_bytes().to_vec()).expect("valid JSON")
}

fn encoded(r: &ChatRequest<'_>) -> (simd_json::OwnedValue, Vec<String>) {
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    encode_request(r, &STAMP, &mut out, &mut dropped);
    (value(std::str::from_utf8(&out).unwrap()), dropped)
}

fn user(text: &'static str) -> Message<'static> {
    Message {
        role: Role::User,
        parts: vec![Part::Text(text.into())],
    }
}

#[test]
fn merges_turns_and_orders_blocks() {
    let r = ChatRequest {
        messages: vec![
            user("a"),
            user("b"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::ToolCall {
                        id: "toolu_1".into(),
                        name: "f".into(),
                        arguments: "[1]".into(),
                    },
                    Part::Thinking {
                        text: "hm".into(),
                        signature: Some("sig".into()),
                    },
                    Part::Thinking {
                        text: "x".into(),
                        signature: None,
                    },
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("after".into()),
                    Part::ToolResult {
                        id: "toolu_1".into(),
                        content: vec![Part::Text("ok".into())],
                        is_error: true,
                    },
                ],
            },
        ],
        ..Default::default()
    };
    let (v, dropped) = encoded(&r);
    let m = &v["messages"];
    assert_eq!(m.as_array().unwrap().len(), 3);
    assert_eq!(m[0]["content"].as_array().unwrap().len(), 2);
    assert_eq!(m[1]["content"][0]["type"], "thinking");
    assert_eq!(m[1]["content"][1]["input"], value("{}"));
    assert_eq!(m[1]["content"].as_array().unwrap().len(), 2);
    assert_eq!(m[2]["content"][0]["type"], "tool_result");
    assert_eq!(m[2]["content"][0]["is_error"], true);
    assert_eq!(v["max_tokens"], 4096);
    assert_eq!(dropped, [THINKING_UNSIGNED, ARGS_NOT_OBJECT]);
}

#[test]
fn thinking_raises_max_tokens_and_drops_sampling() {
    let r = ChatRequest {
        messages: vec![user("q")],
        max_tokens: Some(1000),
        temperature: Some(0.5),
        top_k: Some(5),
        seed: Some(7),
        reasoning: Some(Reasoning::Effort(Effort::Low)),
        ..Default::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["max_tokens"], 3048);
    assert_eq!(
        v["thinking"],
        value(r#"{"type":"enabled","budget_tokens":2048}"#)
    );
    assert!(v.get("temperature").is_none());
    assert_eq!(dropped, ["temperature", "top_k", "seed"]);
}

#[test]
fn tools_choice_and_clamped_temperature() {
    let r = ChatRequest {
        messages: vec![user("q")],
        temperature: Some(1.5),
        tools: vec![Tool {
            openapi: false,
            name: "f".into(),
            description: None,
            parameters: None,
        }],
        parallel_tool_calls: Some(false),
        user: Some("u-1".into()),
        ..Default::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["temperature"], 1.0);
    assert_eq!(
        v["tool_choice"],
        value(r#"{"type":"auto","disable_parallel_tool_use":true}"#)
    );
    assert_eq!(v["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(v["metadata"]["user_id"], "u-1");
    assert_eq!(dropped, [TEMPERATURE_CLAMPED]);
}

#[test]
fn decodes_a_response() {
    let mut body = br#"{"id":"msg_1","model":"m","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"hi"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}},{"type":"server_tool_use","id":"x"}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":3}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut body).unwrap();
    let r = decode_response(&v).unwrap();
    assert_eq!(r.parts.len(), 3);
    assert!(matches!(&r.parts[2], Part::ToolCall { arguments, .. } if arguments == r#"{"a":1}"#));
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert_eq!(r.stop_sequence, None);
    let want = Usage {
        input: 17,
        output: 3,
        cache_read: 5,
        cache_write: 2,
        reasoning: 0,
    };
    assert_eq!(r.usage, want);
    let mut bad = br#"{"id":"msg_1","content":[{"text":"x"}]}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut bad).unwrap();
    assert_eq!(
        decode_response(&v).unwrap_err().kind,
        Kind::UpstreamProtocol
    );
}

fn stream(events: &[&str]) -> Vec<String> {
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for e in events {
        let mut data = e.as_bytes().to_vec();
        d.decode(&mut data, &mut |ev| seen.push(format!("{ev:?}")))
            .unwrap();
    }
    seen
}

#[test]
fn stream_numbers_tools_and_keeps_input_usage() {
    let seen = stream(&[
        r#"{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":9,"cache_read_input_tokens":1,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_a","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":20}}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"future_event"}"#,
    ]);
    assert_eq!(seen.len(), 6, "{seen:#?}");
    assert!(seen[1].contains("index: 0"));
    assert!(seen[2].contains("ToolArguments { index: 0"));
    assert!(seen[4].contains("input: 10, output: 20, cache_read: 1"));
    assert_eq!(seen[5], "Done");
    let mut garbage = b"{not json".to_vec();
    let err = StreamDecoder::default()
        .decode(&mut garbage, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.kind, Kind::UpstreamProtocol);
}

#[test]
fn stream_error_kind() {
    let seen =
        stream(&[r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#]);
    assert!(seen[0].contains("UpstreamServer") && seen[0].contains("anthropic: Overloaded"));
}

#[test]
fn classifies_errors() {
    let body = |t: &str, m: &str| {
        format!(r#"{{"type":"error","error":{{"type":"{t}","message":"{m}"}}}}"#)
    };
    let c = |s, b: &str| classify(s, b.as_bytes());
    let long = body(
        "invalid_request_error",
        "prompt is too long: 210000 tokens > 200000 maximum",
    );
    assert_eq!(c(400, &long).kind, Kind::UpstreamContextWindow);
    assert_eq!(
        c(400, &body("invalid_request_error", "bad")).kind,
        Kind::UpstreamBadRequest
    );
    assert_eq!(c(401, "").kind, Kind::UpstreamAuth);
    assert_eq!(c(429, "").kind, Kind::UpstreamRateLimited);
    assert_eq!(c(529, "<html>").kind, Kind::UpstreamServer);
    assert_eq!(c(504, "").kind, Kind::UpstreamTimeout);
    assert_eq!(c(502, "").message, "anthropic: HTTP 502");
    assert_eq!(
        c(500, &body("api_error", "Internal")).message,
        "anthropic: Internal"
    );
    assert_eq!(c(500, "").retry_after_s, None);
}

#[test]
fn stream_usage_adds_cache_reads_and_writes_to_input() {
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for e in [
        r#"{"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":4,"cache_creation_input_tokens":300,"cache_read_input_tokens":5000,"output_tokens":1}}}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":77}}"#,
    ] {
        let mut data = e.as_bytes().to_vec();
        d.decode(&mut data, &mut |ev| match ev {
            Event::Start { usage, .. } | Event::Usage(usage) => seen.push(usage),
            _ => {}
        })
        .unwrap();
    }
    let start = Usage {
        input: 5304,
        output: 1,
        cache_read: 5000,
        cache_write: 300,
        reasoning: 0,
    };
    assert_eq!(
        seen,
        [
            start,
            Usage {
                output: 77,
                ..start
            }
        ]
    );
}
