//! The Responses API as an upstream: a canonical request written as `POST /v1/responses`
//! (`input` items, `instructions`, function tools, `text.format`, `reasoning.effort`, never
//! stored), and a whole `response` object read back. Errors have OpenAI's shape. No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Effort, Finish, Image, Json, Part, Reasoning, ResponseFormat, Role,
    Stamp, ToolChoice, note_dropped,
};
use crate::providers::encode::{Commas, float_field, key};

pub(super) fn str_at<'a>(v: Json<'a>, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

fn effort_name(e: Effort) -> &'static str {
    match e {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
    }
}

fn image_url(out: &mut Vec<u8>, img: &Image<'_>) {
    match img {
        Image::Url(u) => push_str(out, u),
        Image::Base64 { media_type, data } => {
            out.push(b'"');
            out.extend_from_slice(b"data:");
            crate::json::push_escaped(out, media_type.as_bytes());
            out.extend_from_slice(b";base64,");
            crate::json::push_escaped(out, data.as_bytes());
            out.push(b'"');
        }
    }
}

fn result_text(content: &[Part<'_>]) -> String {
    let mut s = String::new();
    for p in content {
        if let Part::Text(t) = p {
            s.push_str(t);
        }
    }
    s
}

/// Writes `r` as a Responses request for `stamp.model`.
pub fn encode_request(
    r: &ChatRequest<'_>,
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    out.extend_from_slice(b"{\"model\":");
    push_str(out, stamp.model);
    if !r.system.is_empty() {
        key(out, "instructions");
        push_str(out, &r.system.join("\n\n"));
    }
    key(out, "input");
    out.push(b'[');
    let mut items = Commas::default();
    for m in &r.messages {
        let (role, text_type) = match m.role {
            Role::User => ("user", "input_text"),
            Role::Assistant => ("assistant", "output_text"),
        };
        // Text and images of a turn make one message item; calls and results are items.
        let mut open = false;
        let close = |out: &mut Vec<u8>, open: &mut bool| {
            if std::mem::take(open) {
                out.extend_from_slice(b"]}");
            }
        };
        for p in &m.parts {
            match p {
                Part::Text(_) | Part::Image(_) => {
                    if !open {
                        items.next(out);
                        out.extend_from_slice(b"{\"type\":\"message\",\"role\":\"");
                        out.extend_from_slice(role.as_bytes());
                        out.extend_from_slice(b"\",\"content\":[");
                        open = true;
                    } else {
                        out.push(b',');
                    }
                    match p {
                        Part::Text(t) => {
                            out.extend_from_slice(b"{\"type\":\"");
                            out.extend_from_slice(text_type.as_bytes());
                            out.extend_from_slice(b"\",\"text\":");
                            push_str(out, t);
                            out.push(b'}');
                        }
                        Part::Image(img) => {
                            out.extend_from_slice(b"{\"type\":\"input_image\",\"image_url\":");
                            image_url(out, img);
                            out.push(b'}');
                        }
                        _ => {}
                    }
                }
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => {
                    close(out, &mut open);
                    items.next(out);
                    out.extend_from_slice(b"{\"type\":\"function_call\",\"call_id\":");
                    push_str(out, id);
                    out.extend_from_slice(b",\"name\":");
                    push_str(out, name);
                    out.extend_from_slice(b",\"arguments\":");
                    push_str(out, arguments);
                    out.push(b'}');
                }
                Part::ToolResult { id, content, .. } => {
                    close(out, &mut open);
                    items.next(out);
                    out.extend_from_slice(b"{\"type\":\"function_call_output\",\"call_id\":");
                    push_str(out, id);
                    out.extend_from_slice(b",\"output\":");
                    push_str(out, &result_text(content));
                    out.push(b'}');
                }
                Part::RedactedThinking(data) => {
                    close(out, &mut open);
                    items.next(out);
                    out.extend_from_slice(
                        b"{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":",
                    );
                    push_str(out, data);
                    out.push(b'}');
                }
                // Summaries without their encrypted reasoning cannot be sent back.
                Part::Thinking { .. } => note_dropped(dropped, "thinking"),
            }
        }
        close(out, &mut open);
    }
    out.push(b']');
    if !r.tools.is_empty() {
        key(out, "tools");
        out.push(b'[');
        let mut c = Commas::default();
        for t in &r.tools {
            c.next(out);
            out.extend_from_slice(b"{\"type\":\"function\",\"name\":");
            push_str(out, &t.name);
            if let Some(d) = &t.description {
                key(out, "description");
                push_str(out, d);
            }
            key(out, "parameters");
            t.write_schema(out);
            out.push(b'}');
        }
        out.push(b']');
    }
    if let Some(choice) = &r.tool_choice {
        key(out, "tool_choice");
        match choice {
            ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
            ToolChoice::Required => out.extend_from_slice(b"\"required\""),
            ToolChoice::None => out.extend_from_slice(b"\"none\""),
            ToolChoice::Tool(name) => {
                out.extend_from_slice(b"{\"type\":\"function\",\"name\":");
                push_str(out, name);
                out.push(b'}');
            }
        }
    }
    if let Some(p) = r.parallel_tool_calls {
        key(out, "parallel_tool_calls");
        out.extend_from_slice(if p { b"true" } else { b"false" });
    }
    if let Some(m) = r.max_tokens {
        key(out, "max_output_tokens");
        push_u64(out, m);
    }
    float_field(out, "temperature", r.temperature);
    float_field(out, "top_p", r.top_p);
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            out.extend_from_slice(b",\"text\":{\"format\":{\"type\":\"json_object\"}}");
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            out.extend_from_slice(b",\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":");
            push_str(out, name);
            if let Some(s) = schema {
                key(out, "schema");
                let _ = simd_json::prelude::Writable::write(*s, out);
            }
            if let Some(s) = strict {
                key(out, "strict");
                out.extend_from_slice(if *s { b"true" } else { b"false" });
            }
            out.extend_from_slice(b"}}");
        }
        Some(ResponseFormat::Text) | None => {}
    }
    let effort = match r.reasoning {
        Some(Reasoning::Effort(e)) => Some(e),
        Some(Reasoning::Budget(b)) => Some(Effort::from_budget(b)),
        Some(Reasoning::Disabled) => Some(Effort::Minimal),
        None => None,
    };
    if let Some(e) = effort {
        out.extend_from_slice(b",\"reasoning\":{\"effort\":\"");
        out.extend_from_slice(effort_name(e).as_bytes());
        out.extend_from_slice(b"\",\"summary\":\"auto\"}");
    }
    if let Some(u) = &r.user {
        key(out, "user");
        push_str(out, u);
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    // A translated conversation arrives whole every time: nothing to keep on OpenAI's side.
    out.extend_from_slice(b",\"store\":false}");
    let absent = [
        ("top_k", r.top_k.is_some()),
        ("stop", !r.stop.is_empty()),
        ("seed", r.seed.is_some()),
        ("n", r.n.is_some_and(|n| n > 1)),
        ("presence_penalty", r.presence_penalty.is_some()),
        ("frequency_penalty", r.frequency_penalty.is_some()),
    ];
    for (name, set) in absent {
        if set {
            note_dropped(dropped, name);
        }
    }
}

/// Usage from a `usage` object (cached and reasoning tokens are shares of input and output).
pub(super) fn usage_of(u: Json<'_>) -> Usage {
    let n = |v: Option<Json<'_>>| v.and_then(|x| x.as_u64()).unwrap_or(0);
    let input = n(u.get("input_tokens"));
    let output = n(u.get("output_tokens"));
    Usage {
        input,
        output,
        cache_read: n(u
            .get("input_tokens_details")
            .and_then(|d| d.get("cached_tokens")))
        .min(input),
        cache_write: 0,
        reasoning: n(u
            .get("output_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")))
        .min(output),
    }
}

/// A `response.failed` (or `status: failed`) error as a gateway error.
pub(super) fn failure(err: Option<Json<'_>>) -> GatewayError {
    let code = err.and_then(|e| str_at(e, "code")).unwrap_or("");
    let kind = match code {
        "rate_limit_exceeded" | "insufficient_quota" => Kind::UpstreamRateLimited,
        "context_length_exceeded" => Kind::UpstreamContextWindow,
        "invalid_prompt" | "invalid_request_error" => Kind::UpstreamBadRequest,
        "content_filter" => Kind::UpstreamContentPolicy,
        _ => Kind::UpstreamServer,
    };
    let message = err.and_then(|e| str_at(e, "message"));
    GatewayError::new(kind, upstream_message("openai-responses", message, None))
}

/// The output items of a response: message text, function calls, reasoning.
pub(super) fn output_parts<'a>(v: Json<'a>, parts: &mut Vec<Part<'a>>) -> usize {
    let mut calls = 0;
    for item in v
        .get("output")
        .and_then(|o| o.as_array())
        .into_iter()
        .flatten()
    {
        match str_at(item, "type") {
            Some("message") => {
                for c in item
                    .get("content")
                    .and_then(|c| c.as_array())
                    .into_iter()
                    .flatten()
                {
                    let text = str_at(c, "text").or_else(|| str_at(c, "refusal"));
                    if let Some(t) = text {
                        parts.push(Part::Text(Cow::Borrowed(t)));
                    }
                }
            }
            Some("function_call") => {
                calls += 1;
                parts.push(Part::ToolCall {
                    id: Cow::Borrowed(str_at(item, "call_id").unwrap_or_default()),
                    name: Cow::Borrowed(str_at(item, "name").unwrap_or_default()),
                    arguments: Cow::Borrowed(str_at(item, "arguments").unwrap_or("{}")),
                });
            }
            Some("reasoning") => {
                let summary: Vec<&str> = item
                    .get("summary")
                    .and_then(|s| s.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|s| str_at(s, "text"))
                    .collect();
                if !summary.is_empty() {
                    parts.push(Part::Thinking {
                        text: Cow::Owned(summary.join("\n\n")),
                        signature: None,
                    });
                }
                if let Some(e) = str_at(item, "encrypted_content") {
                    parts.push(Part::RedactedThinking(Cow::Borrowed(e)));
                }
            }
            _ => {}
        }
    }
    calls
}

/// The finish of a finished response.
pub(super) fn finish_of(v: Json<'_>, calls: usize) -> Finish {
    let reason = v
        .get("incomplete_details")
        .and_then(|d| str_at(d, "reason"));
    match (str_at(v, "status"), reason) {
        (Some("incomplete"), Some("content_filter")) => Finish::ContentFilter,
        (Some("incomplete"), _) => Finish::Length,
        _ if calls > 0 => Finish::ToolCalls,
        _ => Finish::EndTurn,
    }
}

pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    if str_at(v, "status") == Some("failed") {
        return Err(failure(v.get("error")));
    }
    let mut parts = Vec::new();
    let calls = output_parts(v, &mut parts);
    Ok(ChatResponse {
        id: Cow::Borrowed(str_at(v, "id").unwrap_or_default()),
        model: Cow::Borrowed(str_at(v, "model").unwrap_or_default()),
        created: v
            .get("created_at")
            .and_then(|c| c.cast_f64())
            .map(|c| c as u64),
        parts,
        finish: Some(finish_of(v, calls)),
        stop_sequence: None,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}
