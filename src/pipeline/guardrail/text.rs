//! The text a guardrail reads in a JSON body — a request or a whole answer, in any protocol —
//! and how what it redacts is written back.
//!
//! Every string value is text except settings (`model`, `tools`, `response_format`, …, at the
//! top) and members that name or point at things (`role`, `type`, `id`, `name`, `url`, image
//! `data`, thinking and its signature, …, at any depth). Below a member that holds the
//! caller's own data (a tool call's `input` or `args`, a tool result's `response`) every
//! string is text, whatever its key. So tool-call arguments and tool results are read on every
//! ingress, and a protocol added later is read without a list of its own.

use std::ops::Range;

use simd_json::prelude::*;
use simd_json::tape::Value;

/// Top-level members that configure the request or describe the answer.
fn setting(key: &str) -> bool {
    matches!(
        key,
        "model"
            | "stream"
            | "stream_options"
            | "tools"
            | "functions"
            | "tool_choice"
            | "function_call"
            | "response_format"
            | "metadata"
            | "user"
            | "cache"
            | "stop"
            | "stop_sequences"
            | "generationConfig"
            | "toolConfig"
            | "safetySettings"
            | "service_tier"
            | "reasoning_effort"
            | "reasoning"
            | "text"
            | "prompt_cache_key"
            | "safety_identifier"
            | "modalities"
            | "audio"
            | "logit_bias"
            | "encoding_format"
            | "output_config"
            | "previous_response_id"
            | "include"
            | "truncation"
            | "cachedContent"
            | "labels"
            | "usageMetadata"
            | "created"
            | "system_fingerprint"
            | "modelVersion"
            | "responseId"
            | "stop_sequence"
            | "error"
    )
}

/// Members, at any depth, that name or point at things rather than carry text.
fn structural(key: &str) -> bool {
    matches!(
        key,
        "type"
            | "role"
            | "id"
            | "object"
            | "model"
            | "tool_call_id"
            | "tool_use_id"
            | "call_id"
            | "name"
            | "media_type"
            | "mime_type"
            | "mimeType"
            | "data"
            | "url"
            | "detail"
            | "signature"
            | "thoughtSignature"
            | "thinking"
            | "encrypted_content"
            | "cache_control"
            | "format"
            | "status"
            | "file_id"
            | "fileUri"
            | "file_uri"
            | "finish_reason"
            | "finishReason"
            | "stop_reason"
            | "index"
            | "logprobs"
            | "usage"
            | "annotations"
            | "citations"
            | "safetyRatings"
    )
}

/// Members whose value is the caller's own data (tool arguments and results as objects).
fn payload(key: &str) -> bool {
    matches!(key, "input" | "args" | "response")
}

/// Calls `visit` with each text string of a parsed body and its content's offset in the body
/// (`base`: the parse's arena address, see `Decoder::parse_at`).
pub fn walk(root: Value<'_, '_>, base: usize, visit: &mut dyn FnMut(&str, usize)) {
    match root.as_object() {
        Some(o) => {
            for (k, v) in o.iter() {
                if !(setting(k) || structural(k)) {
                    descend(v, false, base, visit, 1);
                }
            }
        }
        None => descend(root, false, base, visit, 1),
    }
}

/// Deeper than this is not read (simd-json's own bound is deeper; no real body comes close).
const MAX_DEPTH: usize = 128;

fn descend(v: Value<'_, '_>, all: bool, base: usize, visit: &mut dyn FnMut(&str, usize), d: usize) {
    if d > MAX_DEPTH {
        return;
    }
    if let Some(s) = v.as_str() {
        visit(s, s.as_ptr() as usize - base);
    } else if let Some(a) = v.as_array() {
        for x in a.iter() {
            descend(x, all, base, visit, d + 1);
        }
    } else if let Some(o) = v.as_object() {
        for (k, x) in o.iter() {
            if all || !structural(k) {
                descend(x, all || payload(k), base, visit, d + 1);
            }
        }
    }
}

/// A string of the body to rewrite: its span, quotes included, and its new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Range<usize>,
    pub text: String,
}

/// The span, quotes included, of the string whose content starts at `at`.
pub fn span(body: &[u8], at: usize) -> Option<Range<usize>> {
    let end = crate::pipeline::decode::string_end(body, at)?;
    Some(at - 1..end + 1)
}

/// `body` with each edit's string replaced (JSON-escaped).
pub fn apply(body: &[u8], edits: &mut [Edit]) -> Vec<u8> {
    edits.sort_unstable_by_key(|e| e.span.start);
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut at = 0;
    for e in edits.iter() {
        if e.span.start < at {
            continue; // two edits of one string cannot happen; never write one twice
        }
        out.extend_from_slice(&body[at..e.span.start]);
        crate::json::push_str(&mut out, &e.text);
        at = e.span.end;
    }
    out.extend_from_slice(&body[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::decode::Decoder;

    fn texts(json: &str) -> Vec<String> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.parse_at(json.as_bytes(), |root, base| {
            walk(root, base, &mut |s, at| {
                assert_eq!(
                    &json.as_bytes()[at..at + 1],
                    &s.as_bytes()[..1.min(s.len())]
                );
                out.push(s.to_owned());
            })
        })
        .unwrap();
        out
    }

    #[test]
    fn reads_content_and_tool_traffic_in_every_protocol() {
        let openai = r#"{"model":"m","user":"u@x.io","messages":[
            {"role":"system","content":"sys"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:x"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"to\":\"a@b.io\"}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"result"}],
            "tools":[{"type":"function","function":{"name":"f","description":"d"}}]}"#;
        assert_eq!(
            texts(openai),
            ["sys", "hi", "{\"to\":\"a@b.io\"}", "result"]
        );
        let anthropic = r#"{"model":"m","system":"sys","messages":[
            {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},
              {"type":"tool_use","id":"t1","name":"f","input":{"name":"Ann","id":"x"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"},
              {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAA"}}]}]}"#;
        assert_eq!(texts(anthropic), ["sys", "Ann", "x", "ok"]);
        let gemini = r#"{"contents":[{"role":"user","parts":[{"text":"q"},
            {"functionCall":{"name":"f","args":{"q":"v"}}},
            {"functionResponse":{"name":"f","response":{"name":"r"}}}]}],
            "generationConfig":{"responseMimeType":"text/plain"}}"#;
        assert_eq!(texts(gemini), ["q", "v", "r"]);
        let answer = r#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,
            "message":{"role":"assistant","content":"answer"},"finish_reason":"stop"}],"usage":{}}"#;
        assert_eq!(texts(answer), ["answer"]);
    }

    #[test]
    fn edits_rewrite_strings_in_place() {
        let body = br#"{"a":"x\"y","b":["keep","z"]}"#;
        let mut d = Decoder::default();
        let mut spans = Vec::new();
        d.parse_at(body, |root, base| {
            walk(root, base, &mut |s, at| {
                spans.push((s.to_owned(), span(body, at).unwrap()))
            })
        })
        .unwrap();
        assert_eq!(spans[0].0, "x\"y");
        let mut edits = vec![
            Edit {
                span: spans[2].1.clone(),
                text: "<Z>".into(),
            },
            Edit {
                span: spans[0].1.clone(),
                text: "n\"ew".into(),
            },
        ];
        let out = apply(body, &mut edits);
        assert_eq!(out, br#"{"a":"n\"ew","b":["keep","<Z>"]}"#);
    }
}
