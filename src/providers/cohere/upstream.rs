//! The Cohere v2 chat wire as a provider expects it, always reached through the canonical
//! form: the `/v2/chat` request body, a whole answer read back, and Cohere's error bodies
//! classified. Pure functions; nothing an upstream sends can make them panic (a malformed
//! shape is `UpstreamProtocol`).
//!
//! The encoder keeps Cohere's shapes: the system prompt is a leading `system` message, tool
//! results are `tool` messages, and the text of an assistant turn that calls tools is its
//! `tool_plan`. Sampling values outside Cohere's ranges are clamped to them, and whatever
//! Cohere cannot express is named in `dropped`, once per name. A finish of `ERROR` or
//! `TIMEOUT` is a failure, not an answer.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_escaped, push_f64, push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Finish, Image, Json, Message, Part, Reasoning, ResponseFormat, Role,
    Stamp, ToolChoice, note_dropped,
};
use crate::providers::encode::{Commas, arguments_of, key, push_texts, system_message};

/// Most stop sequences Cohere takes.
const MAX_STOP: usize = 5;
/// Cohere's `k` ceiling.
const MAX_K: u64 = 500;
const STOP_TRUNCATED: &str = "stop (more than 5)";
const SEED_NEGATIVE: &str = "seed (negative)";
const JSON_WITH_TOOLS: &str = "response_format (with tools)";

// === request ===

/// Writes the `/v2/chat` body for `r`, with `model` = `stamp.model`. `max_tokens` is sent
/// only when the client set it: Cohere defaults it to the model's own limit.
pub fn encode_request(
    r: &ChatRequest<'_>,
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    out.extend_from_slice(b"{\"model\":");
    push_str(out, stamp.model);
    key(out, "messages");
    write_messages(r, out, dropped);
    if let Some(n) = r.max_tokens {
        key(out, "max_tokens");
        push_u64(out, n);
    }
    write_sampling(r, out, dropped);
    if !r.stop.is_empty() {
        if r.stop.len() > MAX_STOP {
            note_dropped(dropped, STOP_TRUNCATED);
        }
        key(out, "stop_sequences");
        let mut c = Commas::default();
        out.push(b'[');
        for s in r.stop.iter().take(MAX_STOP) {
            c.next(out);
            push_str(out, s);
        }
        out.push(b']');
    }
    if let Some(seed) = r.seed {
        if seed >= 0 {
            key(out, "seed");
            out.extend_from_slice(itoa::Buffer::new().format(seed).as_bytes());
        } else {
            note_dropped(dropped, SEED_NEGATIVE);
        }
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    write_tools(r, out, dropped);
    write_response_format(r, out, dropped);
    match r.reasoning {
        Some(Reasoning::Disabled) => {
            out.extend_from_slice(b",\"thinking\":{\"type\":\"disabled\"}")
        }
        Some(Reasoning::Effort(e)) => write_thinking_budget(e.budget(), out),
        Some(Reasoning::Budget(b)) => write_thinking_budget(b.max(1), out),
        None => {}
    }
    if r.n.is_some_and(|n| n > 1) {
        note_dropped(dropped, "n");
    }
    if r.user.is_some() {
        note_dropped(dropped, "user");
    }
    out.push(b'}');
}

fn write_thinking_budget(tokens: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"thinking\":{\"type\":\"enabled\",\"token_budget\":");
    push_u64(out, tokens);
    out.push(b'}');
}

/// `temperature`, `p`, the penalties and `k`, each clamped to the range Cohere accepts (a
/// clamp is named in `dropped`).
fn write_sampling(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let fields = [
        ("temperature", r.temperature, 0.0..=1.0),
        ("top_p", r.top_p, 0.01..=0.99),
        ("frequency_penalty", r.frequency_penalty, 0.0..=1.0),
        ("presence_penalty", r.presence_penalty, 0.0..=1.0),
    ];
    for (name, v, range) in fields {
        // A non-finite number has no JSON form; it cannot come from a parsed body anyway.
        let Some(v) = v.filter(|v| v.is_finite()) else {
            continue;
        };
        let clamped = v.clamp(*range.start(), *range.end());
        if clamped != v {
            note_dropped(dropped, &format!("{name} (clamped to {clamped})"));
        }
        // Cohere's nucleus sampling is `p`; the other names are the same on both sides.
        key(out, if name == "top_p" { "p" } else { name });
        push_f64(out, clamped);
    }
    if let Some(k) = r.top_k {
        if k > MAX_K {
            note_dropped(dropped, &format!("top_k (clamped to {MAX_K})"));
        }
        key(out, "k");
        push_u64(out, k.min(MAX_K));
    }
}

fn write_messages(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let mut c = Commas::default();
    out.push(b'[');
    system_message(r, &mut c, out);
    for m in &r.messages {
        match m.role {
            Role::User => write_user(m, &mut c, out, dropped),
            Role::Assistant => write_assistant(m, &mut c, out, dropped),
        }
    }
    out.push(b']');
}

/// A user turn: its tool results as `tool` messages first (Cohere wants them right after the
/// assistant turn that called), then the rest as one `user` message.
fn write_user(m: &Message<'_>, c: &mut Commas, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let mut results = 0;
    for p in &m.parts {
        match p {
            Part::ToolResult { id, content, .. } => {
                results += 1;
                c.next(out);
                write_tool_result(id, content, out, dropped);
            }
            Part::Thinking { .. } | Part::RedactedThinking(_) => note_dropped(dropped, "thinking"),
            Part::ToolCall { .. } => note_dropped(dropped, "user tool_use"),
            Part::Text(_) | Part::Image(_) => {}
        }
    }
    let rest = |p: &&Part<'_>| matches!(p, Part::Text(_) | Part::Image(_));
    if results > 0 && !m.parts.iter().any(|p| rest(&p)) {
        return;
    }
    c.next(out);
    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
    if !m.parts.iter().any(|p| matches!(p, Part::Image(_))) {
        push_texts(out, &m.parts);
    } else {
        let mut blocks = Commas::default();
        out.push(b'[');
        for p in m.parts.iter().filter(rest) {
            blocks.next(out);
            match p {
                Part::Image(img) => write_image(img, out),
                Part::Text(t) => write_text_block(t, out),
                _ => {}
            }
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn write_text_block(t: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    push_str(out, t);
    out.push(b'}');
}

/// `{"type":"image_url",…}`: Cohere takes a web URL or a base64 data URI.
fn write_image(img: &Image<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"image_url\",\"image_url\":{\"url\":\"");
    match img {
        Image::Url(u) => push_escaped(out, u.as_bytes()),
        Image::Base64 { media_type, data } => {
            out.extend_from_slice(b"data:");
            push_escaped(out, media_type.as_bytes());
            out.extend_from_slice(b";base64,");
            push_escaped(out, data.as_bytes());
        }
    }
    out.extend_from_slice(b"\"}}");
}

/// A `tool` message: the result's text as content blocks (a string would have to be a JSON
/// object). Cohere has no error flag; the text says what went wrong, as on OpenAI's wire.
fn write_tool_result(id: &str, content: &[Part<'_>], out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
    push_str(out, id);
    out.extend_from_slice(b",\"content\":[");
    let mut texts = 0;
    for p in content {
        match p {
            Part::Text(t) => {
                if texts > 0 {
                    out.push(b',');
                }
                texts += 1;
                write_text_block(t, out);
            }
            Part::Image(_) => note_dropped(dropped, "tool_result image"),
            _ => {}
        }
    }
    if texts == 0 {
        // Cohere requires content; a result with nothing to say is one empty block.
        write_text_block("", out);
    }
    out.extend_from_slice(b"]}");
}

/// An assistant turn. With tool calls its text is the `tool_plan` and `content` holds only
/// thinking; without, `content` is the text (blocks, when thinking leads it).
fn write_assistant(m: &Message<'_>, c: &mut Commas, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let has = |f: fn(&Part<'_>) -> bool| m.parts.iter().any(f);
    let has_text = has(|p| matches!(p, Part::Text(t) if !t.is_empty()));
    let has_calls = has(|p| matches!(p, Part::ToolCall { .. }));
    let has_thinking = has(|p| matches!(p, Part::Thinking { .. }));
    c.next(out);
    out.extend_from_slice(b"{\"role\":\"assistant\"");
    if has_calls && has_text {
        key(out, "tool_plan");
        push_texts(out, &m.parts);
    }
    if has_thinking {
        key(out, "content");
        write_assistant_blocks(&m.parts, !has_calls, out);
    } else if !has_calls {
        // Cohere rejects an assistant message with neither content nor tool calls.
        key(out, "content");
        push_texts(out, &m.parts);
    }
    if has_calls {
        key(out, "tool_calls");
        let mut calls = Commas::default();
        out.push(b'[');
        for p in &m.parts {
            if let Part::ToolCall {
                id,
                name,
                arguments,
            } = p
            {
                calls.next(out);
                write_tool_call(id, name, arguments, out);
            }
        }
        out.push(b']');
    }
    out.push(b'}');
    for p in &m.parts {
        match p {
            Part::RedactedThinking(_) => note_dropped(dropped, "redacted_thinking"),
            Part::Image(_) => note_dropped(dropped, "assistant image"),
            Part::ToolResult { .. } => note_dropped(dropped, "assistant tool_result"),
            Part::Text(_) | Part::ToolCall { .. } | Part::Thinking { .. } => {}
        }
    }
}

/// `[{"type":"thinking",…},…,{"type":"text",…}]`: thinking first, then (`with_text`) the text.
fn write_assistant_blocks(parts: &[Part<'_>], with_text: bool, out: &mut Vec<u8>) {
    let mut c = Commas::default();
    out.push(b'[');
    for p in parts {
        if let Part::Thinking { text, .. } = p {
            c.next(out);
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            push_str(out, text);
            out.push(b'}');
        }
    }
    for p in parts.iter().filter(|_| with_text) {
        if let Part::Text(t) = p
            && !t.is_empty()
        {
            c.next(out);
            write_text_block(t, out);
        }
    }
    out.push(b']');
}

fn write_tool_call(id: &str, name: &str, arguments: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    push_str(out, id);
    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
    push_str(out, name);
    out.extend_from_slice(b",\"arguments\":");
    // A call with no arguments takes an empty object.
    let arguments = Some(arguments).filter(|a| !a.trim().is_empty());
    push_str(out, arguments.unwrap_or("{}"));
    out.extend_from_slice(b"}}");
}

fn write_tools(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    // Without tools a tool choice means nothing (and `REQUIRED` would be rejected).
    if r.tools.is_empty() {
        return;
    }
    key(out, "tools");
    let mut c = Commas::default();
    out.push(b'[');
    for t in &r.tools {
        c.next(out);
        out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
        push_str(out, &t.name);
        if let Some(d) = &t.description {
            key(out, "description");
            push_str(out, d);
        }
        key(out, "parameters");
        t.write_schema(out);
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
    let choice = match &r.tool_choice {
        Some(ToolChoice::Required) => Some("REQUIRED"),
        Some(ToolChoice::None) => Some("NONE"),
        // Cohere cannot name a tool; with only that one defined, "some tool" is the same.
        Some(ToolChoice::Tool(name)) if r.tools.len() == 1 && r.tools[0].name == *name => {
            Some("REQUIRED")
        }
        Some(ToolChoice::Tool(_)) => {
            note_dropped(dropped, "tool_choice");
            None
        }
        Some(ToolChoice::Auto) | None => None,
    };
    if let Some(choice) = choice {
        key(out, "tool_choice");
        push_str(out, choice);
    }
    // Cohere may always call tools in parallel; with `NONE` there is nothing to serialise.
    if r.parallel_tool_calls == Some(false) && r.tool_choice != Some(ToolChoice::None) {
        note_dropped(dropped, "parallel_tool_calls");
    }
}

/// JSON mode: `{"type":"json_object"}`, with the schema as `json_schema` when there is one.
/// Cohere does not take it together with tools.
fn write_response_format(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let schema = match &r.response_format {
        None | Some(ResponseFormat::Text) => return,
        Some(ResponseFormat::JsonObject) => None,
        Some(ResponseFormat::JsonSchema { schema, .. }) => *schema,
    };
    if !r.tools.is_empty() {
        note_dropped(dropped, JSON_WITH_TOOLS);
        return;
    }
    out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"");
    if let Some(schema) = schema {
        key(out, "json_schema");
        let _ = schema.write(out);
    }
    out.push(b'}');
}

// === response ===

pub(super) fn protocol(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::UpstreamProtocol, message)
}

pub(super) fn str_at<'a>(v: Json<'a>, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// The canonical finish of a successful `finish_reason`.
pub(super) fn finish_of(reason: &str) -> Option<Finish> {
    Some(match reason {
        "COMPLETE" => Finish::EndTurn,
        "STOP_SEQUENCE" => Finish::StopSequence,
        "MAX_TOKENS" => Finish::Length,
        "TOOL_CALL" => Finish::ToolCalls,
        _ => return None,
    })
}

/// The error a failed generation is: `finish_reason` `ERROR` or `TIMEOUT`, or an `error`
/// message (which only the stream's `message-end` carries). `None` for a generation that ended
/// well.
pub(super) fn failure(reason: Option<&str>, error: Option<&str>) -> Option<GatewayError> {
    let error = error.filter(|e| !e.trim().is_empty());
    let (kind, fallback) = match reason {
        Some("TIMEOUT") => (
            Kind::UpstreamTimeout,
            "the generation exceeded its time limit",
        ),
        Some("ERROR") => (Kind::UpstreamServer, "the generation failed"),
        _ if error.is_some() => (Kind::UpstreamServer, ""),
        _ => return None,
    };
    let message = upstream_message("cohere", Some(error.unwrap_or(fallback)), None);
    Some(GatewayError::new(kind, message))
}

/// `usage` of an answer or of `message-end`.
pub(super) fn usage_of(u: Json<'_>) -> Usage {
    super::usage_from(
        |holder, key| u.get(holder)?.get(key).and_then(super::count),
        u.get("cached_tokens").and_then(super::count),
    )
}

/// Reads a whole `/v2/chat` answer.
pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    let reason = str_at(v, "finish_reason");
    if let Some(e) = failure(reason, None) {
        return Err(e);
    }
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| protocol("cohere: response has no message"))?;
    // Canonical order: thinking, text (the tool plan leads it), tool calls.
    let mut parts: Vec<Part<'a>> = blocks(msg, "thinking")
        .map(|t| Part::Thinking {
            text: Cow::Borrowed(t),
            signature: None,
        })
        .collect();
    let plan = str_at(msg, "tool_plan").filter(|t| !t.is_empty());
    let text = str_at(msg, "content")
        .into_iter()
        .chain(blocks(msg, "text"));
    parts.extend(plan.into_iter().chain(text).map(|t| Part::Text(t.into())));
    let calls = msg.get("tool_calls").and_then(|c| c.as_array());
    for (i, call) in calls.into_iter().flatten().enumerate() {
        let f = call.get("function");
        let name = f.and_then(|f| str_at(f, "name"));
        let (Some(id), Some(name)) = (str_at(call, "id"), name) else {
            return Err(protocol(format!(
                "cohere: message.tool_calls[{i}]: no id or function name"
            )));
        };
        parts.push(Part::ToolCall {
            id: Cow::Borrowed(id),
            name: Cow::Borrowed(name),
            arguments: arguments_of(f),
        });
    }
    Ok(ChatResponse {
        id: Cow::Borrowed(str_at(v, "id").unwrap_or_default()),
        // Cohere does not echo the model; the ingress reports the one the gateway asked for.
        model: Cow::Borrowed(""),
        created: None,
        parts,
        finish: reason.and_then(finish_of),
        // Cohere does not say which stop sequence matched.
        stop_sequence: None,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}

/// The `kind` strings of `message.content`'s blocks of type `kind` (`text`, `thinking`).
fn blocks<'a>(msg: Json<'a>, kind: &'static str) -> impl Iterator<Item = &'a str> {
    let content = msg.get("content").and_then(|c| c.as_array());
    content
        .into_iter()
        .flatten()
        .filter(move |b| str_at(b, "type") == Some(kind))
        .filter_map(move |b| str_at(b, kind))
}

// === errors ===

/// Classifies a non-2xx `/v2/chat` answer (`{"id","message"}`, sometimes `message` alone);
/// `retry_after_s` is left to the caller's headers.
pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok();
    let message = parsed.as_ref().and_then(|v| str_at(v, "message"));
    let kind = match status {
        400 | 422 if message.is_some_and(too_long) => Kind::UpstreamContextWindow,
        // A deny-listed token in the request or the answer.
        498 => Kind::UpstreamContentPolicy,
        // Cancelled before it finished: another attempt may complete.
        499 => Kind::UpstreamTimeout,
        400..=599 => Kind::from_upstream_status(status),
        _ => Kind::UpstreamProtocol,
    };
    GatewayError::new(kind, upstream_message("cohere", message, Some(status)))
}

/// Whether a 400's message says the prompt does not fit the model's context window ("too many
/// tokens: …", "… exceeds the context length …").
fn too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["too many tokens", "context length", "context window"]
        .iter()
        .any(|needle| m.contains(needle))
}

#[cfg(test)]
mod tests;
