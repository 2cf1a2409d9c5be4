//! Unit tests of `providers::openai::upstream`.

use super::*;
use crate::providers::canonical::Tool;

fn stamp() -> Stamp<'static> {
    Stamp {
        model: "gpt-4o",
        created: 1,
        default_max_tokens: 4096,
        id: "",
    }
}

fn encode(r: &ChatRequest<'_>) -> (String, Vec<String>) {
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    encode_request(r, &stamp(), &mut out, &mut dropped);
    (String::from_utf8(out).unwrap(), dropped)
}

fn user(parts: Vec<Part<'static>>) -> Message<'static> {
    Message {
        role: Role::User,
        parts,
    }
}

#[test]
fn tool_results_come_before_the_rest_of_the_user_turn() {
    let r = ChatRequest {
        messages: vec![user(vec![
            Part::Text("and?".into()),
            Part::ToolResult {
                id: "call_1".into(),
                content: vec![Part::Text("42".into())],
                is_error: false,
            },
        ])],
        ..Default::default()
    };
    let (body, dropped) = encode(&r);
    assert_eq!(
        body,
        r#"{"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":"call_1","content":"42"},{"role":"user","content":"and?"}]}"#
    );
    assert!(dropped.is_empty());
}

#[test]
fn images_become_parts_and_thinking_is_dropped_once() {
    let r = ChatRequest {
        messages: vec![
            user(vec![Part::Image(Image::Base64 {
                media_type: "image/png".into(),
                data: "iVBOR".into(),
            })]),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking {
                        text: "hm".into(),
                        signature: None,
                    },
                    Part::RedactedThinking("x".into()),
                ],
            },
        ],
        top_k: Some(5),
        reasoning: Some(Reasoning::Budget(2000)),
        ..Default::default()
    };
    let (body, dropped) = encode(&r);
    assert!(
        body.contains(r#"{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}"#)
    );
    assert!(body.contains(r#"{"role":"assistant","content":""}"#));
    assert!(body.ends_with(r#","reasoning_effort":"low"}"#));
    assert_eq!(dropped, ["thinking", "top_k"]);
}

#[test]
fn tool_choice_needs_tools() {
    let mut r = ChatRequest {
        tool_choice: Some(ToolChoice::Tool("f".into())),
        parallel_tool_calls: Some(false),
        ..Default::default()
    };
    assert!(!encode(&r).0.contains("tool_choice"));
    r.tools.push(Tool {
        openapi: false,
        name: "f".into(),
        description: None,
        parameters: None,
    });
    assert!(encode(&r).0.ends_with(
        r#""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false}"#
    ));
}

fn decode_all(chunks: &[&str]) -> Vec<String> {
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for c in chunks {
        let mut data = c.as_bytes().to_vec();
        d.decode(&mut data, &mut |ev| seen.push(format!("{ev:?}")))
            .unwrap();
    }
    seen
}

#[test]
fn stream_announces_each_tool_once() {
    let seen = decode_all(&[
        r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","function":{"arguments":"{}"}}]}}]}"#,
        r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen[1].starts_with("ToolCall { index: 0"));
    assert!(seen[2].starts_with("ToolArguments { index: 0"));
    assert_eq!(seen[4], "Done");
}

#[test]
fn stream_skips_azure_preamble_and_rejects_garbage() {
    let seen = decode_all(&[r#"{"choices":[],"id":"","model":"","prompt_filter_results":[]}"#]);
    assert!(seen.is_empty());
    let mut d = StreamDecoder::default();
    let err = d.decode(&mut b"{nope".to_vec(), &mut |_| {}).unwrap_err();
    assert_eq!(err.kind, Kind::UpstreamProtocol);
}

#[test]
fn stream_error_object_maps_like_classify() {
    let seen = decode_all(&[
        r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
    ]);
    assert_eq!(
        seen,
        [r#"Error { kind: UpstreamRateLimited, message: "openai: Rate limit reached" }"#]
    );
}

#[test]
fn classify_by_status_and_code() {
    let ctx = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":null}}"#;
    assert_eq!(classify(400, ctx).kind, Kind::UpstreamContextWindow);
    assert_eq!(classify(400, b"{}").kind, Kind::UpstreamBadRequest);
    assert_eq!(classify(503, b"<html>").kind, Kind::UpstreamServer);
    assert_eq!(classify(503, b"<html>").message, "openai: HTTP 503");
    assert_eq!(classify(504, b"").kind, Kind::UpstreamTimeout);
    let e = classify(
        401,
        br#"{"error":{"message":"Incorrect API key provided: sk-proj-ab***yz. See docs.","code":"invalid_api_key"}}"#,
    );
    assert_eq!(e.kind, Kind::UpstreamAuth);
    assert_eq!(
        e.message,
        "openai: Incorrect API key provided: [redacted]. See docs."
    );
    assert_eq!(e.retry_after_s, None);
}

#[test]
fn response_refusal_is_a_content_filter() {
    let mut body = br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut body).unwrap();
    let r = decode_response(&v).unwrap();
    assert_eq!(r.finish, Some(Finish::ContentFilter));
    assert!(matches!(&r.parts[..], [Part::Text(t)] if t == "I can't help with that."));
    assert_eq!(r.usage, Usage::default());
}

#[test]
fn usage_carries_cached_and_reasoning_tokens() {
    let want = Usage {
        input: 900,
        output: 250,
        cache_read: 600,
        cache_write: 0,
        reasoning: 200,
    };
    let mut body = br#"{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":900,"completion_tokens":250,"total_tokens":1150,"prompt_tokens_details":{"cached_tokens":600},"completion_tokens_details":{"reasoning_tokens":200}}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut body).unwrap();
    assert_eq!(decode_response(&v).unwrap().usage, want);

    // Streamed: the usage arrives in the last chunk, whose `choices` is empty.
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for chunk in [
        r#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#,
        r#"{"id":"c1","model":"m","choices":[],"usage":{"prompt_tokens":900,"completion_tokens":250,"prompt_tokens_details":{"cached_tokens":600},"completion_tokens_details":{"reasoning_tokens":200}}}"#,
    ] {
        let mut data = chunk.as_bytes().to_vec();
        d.decode(&mut data, &mut |ev| {
            if let Event::Usage(u) = ev {
                seen.push(u);
            }
        })
        .unwrap();
    }
    assert_eq!(seen, [want]);
}
