//! Gemini's `generateContent` as an upstream: a canonical request written as a
//! `GenerateContentRequest`, a whole `GenerateContentResponse` read back, and Google's error
//! bodies classified. The model is in the path, never the body. No I/O.
//!
//! Gemini matches a function's result to its call by the function's name, not an id: a
//! result's name is looked up among the calls earlier in the conversation. Thinking from
//! another provider cannot go back to Gemini (its signatures are Gemini's own) and is dropped.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Finish, Image, Json, Message, Part, Reasoning, ResponseFormat, Role,
    Stamp, ToolChoice, note_dropped,
};
use crate::providers::encode::{Commas, float_field, key};

pub(super) fn protocol(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::UpstreamProtocol, message)
}

pub(super) fn str_at<'a>(v: Json<'a>, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// The media type of an image URL, from its extension (Gemini wants one).
fn media_type_of(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        _ => "image/jpeg",
    }
}

fn inline(out: &mut Vec<u8>, media_type: &str, data: &str) {
    out.extend_from_slice(b"{\"inlineData\":{\"mimeType\":");
    push_str(out, media_type);
    out.extend_from_slice(b",\"data\":");
    push_str(out, data);
    out.extend_from_slice(b"}}");
}

fn image(out: &mut Vec<u8>, img: &Image<'_>) {
    match img {
        Image::Base64 { media_type, data } => inline(out, media_type, data),
        Image::Url(url) => {
            // A data: URL is inline bytes; any other is a file Gemini fetches.
            if let Some((head, data)) = url.strip_prefix("data:").and_then(|u| u.split_once(','))
                && let Some(mt) = head.strip_suffix(";base64")
            {
                return inline(out, mt, data);
            }
            out.extend_from_slice(b"{\"fileData\":{\"mimeType\":");
            push_str(out, media_type_of(url));
            out.extend_from_slice(b",\"fileUri\":");
            push_str(out, url);
            out.extend_from_slice(b"}}");
        }
    }
}

/// A tool result's text as Gemini's `response` object: an object stays one, anything else is
/// `{"result": …}` (`{"error": …}` for a failed call).
fn function_response(out: &mut Vec<u8>, content: &[Part<'_>], is_error: bool) {
    let mut text = String::new();
    for p in content {
        if let Part::Text(t) = p {
            text.push_str(t);
        }
    }
    let trimmed = text.trim();
    if !is_error && trimmed.starts_with('{') {
        let mut copy = trimmed.as_bytes().to_vec();
        if simd_json::to_borrowed_value(&mut copy).is_ok_and(|v| v.is_object()) {
            out.extend_from_slice(trimmed.as_bytes());
            return;
        }
    }
    out.extend_from_slice(if is_error {
        b"{\"error\":".as_slice()
    } else {
        b"{\"result\":"
    });
    push_str(out, &text);
    out.push(b'}');
}

/// The name of the call `id` made: the latest such call, should a client reuse ids.
fn call_name<'a>(messages: &'a [Message<'a>], id: &str) -> Option<&'a str> {
    messages.iter().rev().find_map(|m| {
        m.parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id: i, name, .. } if i == id => Some(name.as_ref()),
                _ => None,
            })
            .last()
    })
}

fn parts(out: &mut Vec<u8>, m: &Message<'_>, all: &[Message<'_>], dropped: &mut Vec<String>) {
    let mut c = Commas::default();
    for p in &m.parts {
        match p {
            Part::Text(t) => {
                c.next(out);
                out.extend_from_slice(b"{\"text\":");
                push_str(out, t);
                out.push(b'}');
            }
            Part::Image(img) => {
                c.next(out);
                image(out, img);
            }
            Part::ToolCall {
                name, arguments, ..
            } => {
                c.next(out);
                out.extend_from_slice(b"{\"functionCall\":{\"name\":");
                push_str(out, name);
                out.extend_from_slice(b",\"args\":");
                let args = crate::providers::canonical::arguments_object(arguments);
                out.extend_from_slice(args.unwrap_or("{}").as_bytes());
                out.extend_from_slice(b"}}");
            }
            Part::ToolResult {
                id,
                content,
                is_error,
            } => {
                c.next(out);
                out.extend_from_slice(b"{\"functionResponse\":{\"name\":");
                push_str(out, call_name(all, id).unwrap_or(id));
                out.extend_from_slice(b",\"response\":");
                function_response(out, content, *is_error);
                out.extend_from_slice(b"}}");
            }
            Part::Thinking { .. } | Part::RedactedThinking(_) => note_dropped(dropped, "thinking"),
        }
    }
    if !c_written(out) {
        // A turn of nothing but dropped thinking: Gemini refuses an empty parts list.
        out.extend_from_slice(b"{\"text\":\"\"}");
    }
}

/// Whether the parts array just opened has a member (its last byte is not the `[`).
fn c_written(out: &[u8]) -> bool {
    out.last() != Some(&b'[')
}

/// Writes the `GenerateContentRequest` for `r` (the model goes in the path).
pub fn encode_request(
    r: &ChatRequest<'_>,
    _stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    out.extend_from_slice(b"{\"contents\":[");
    let mut c = Commas::default();
    for m in &r.messages {
        c.next(out);
        out.extend_from_slice(match m.role {
            Role::User => b"{\"role\":\"user\",\"parts\":[".as_slice(),
            Role::Assistant => b"{\"role\":\"model\",\"parts\":[",
        });
        parts(out, m, &r.messages, dropped);
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"systemInstruction\":{\"parts\":[");
        let mut c = Commas::default();
        for s in &r.system {
            c.next(out);
            out.extend_from_slice(b"{\"text\":");
            push_str(out, s);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[{\"functionDeclarations\":[");
        let mut c = Commas::default();
        for t in &r.tools {
            c.next(out);
            out.extend_from_slice(b"{\"name\":");
            push_str(out, &t.name);
            if let Some(d) = &t.description {
                key(out, "description");
                push_str(out, d);
            }
            key(out, "parametersJsonSchema");
            t.write_schema(out);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}]");
    }
    if let Some(choice) = &r.tool_choice {
        out.extend_from_slice(b",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":");
        match choice {
            ToolChoice::Auto => out.extend_from_slice(b"\"AUTO\""),
            ToolChoice::Required => out.extend_from_slice(b"\"ANY\""),
            ToolChoice::None => out.extend_from_slice(b"\"NONE\""),
            ToolChoice::Tool(name) => {
                out.extend_from_slice(b"\"ANY\",\"allowedFunctionNames\":[");
                push_str(out, name);
                out.push(b']');
            }
        }
        out.extend_from_slice(b"}}");
    }
    generation_config(r, out, dropped);
    out.push(b'}');
    if r.parallel_tool_calls == Some(false) {
        note_dropped(dropped, "parallel_tool_calls");
    }
    if r.user.is_some() {
        note_dropped(dropped, "user");
    }
    if r.n.is_some_and(|n| n > 1) {
        note_dropped(dropped, "n");
    }
}

fn generation_config(r: &ChatRequest<'_>, out: &mut Vec<u8>, _dropped: &mut Vec<String>) {
    let at = out.len();
    out.extend_from_slice(b",\"generationConfig\":{\"candidateCount\":1");
    float_field(out, "temperature", r.temperature);
    float_field(out, "topP", r.top_p);
    if let Some(k) = r.top_k {
        key(out, "topK");
        push_u64(out, k);
    }
    if let Some(m) = r.max_tokens {
        key(out, "maxOutputTokens");
        push_u64(out, m);
    }
    if !r.stop.is_empty() {
        key(out, "stopSequences");
        out.push(b'[');
        let mut c = Commas::default();
        for s in &r.stop {
            c.next(out);
            push_str(out, s);
        }
        out.push(b']');
    }
    if let Some(seed) = r.seed {
        key(out, "seed");
        out.extend_from_slice(itoa::Buffer::new().format(seed).as_bytes());
    }
    float_field(out, "presencePenalty", r.presence_penalty);
    float_field(out, "frequencyPenalty", r.frequency_penalty);
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            key(out, "responseMimeType");
            push_str(out, "application/json");
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            key(out, "responseMimeType");
            push_str(out, "application/json");
            if let Some(s) = schema {
                key(out, "responseJsonSchema");
                let _ = simd_json::prelude::Writable::write(*s, out);
            }
        }
        Some(ResponseFormat::Text) | None => {}
    }
    let budget = match r.reasoning {
        Some(Reasoning::Effort(e)) => Some(e.budget()),
        Some(Reasoning::Budget(b)) => Some(b),
        Some(Reasoning::Disabled) => Some(0),
        None => None,
    };
    if let Some(b) = budget {
        key(out, "thinkingConfig");
        out.extend_from_slice(b"{\"thinkingBudget\":");
        push_u64(out, b);
        if b > 0 {
            out.extend_from_slice(b",\"includeThoughts\":true");
        }
        out.push(b'}');
    }
    out.push(b'}');
    // Only the default candidate count: leave the object out.
    if out.len() - at == ",\"generationConfig\":{\"candidateCount\":1}".len() {
        out.truncate(at);
    }
}

// === answers ===

pub(super) fn count(u: Option<Json<'_>>, k: &str) -> u64 {
    u.and_then(|u| u.get(k))
        .and_then(|x| {
            x.as_u64()
                .or_else(|| x.cast_f64().map(|f| f.max(0.0) as u64))
        })
        .unwrap_or(0)
}

/// Usage from a `usageMetadata` object: the prompt count includes its cached share, the
/// answer's count leaves out the thinking, which Usage counts in `output`.
pub(super) fn usage_of(u: Json<'_>) -> Usage {
    let u = Some(u);
    let thoughts = count(u, "thoughtsTokenCount");
    let input = count(u, "promptTokenCount");
    Usage {
        input,
        output: count(u, "candidatesTokenCount") + thoughts,
        cache_read: count(u, "cachedContentTokenCount").min(input),
        cache_write: 0,
        reasoning: thoughts,
    }
}

/// The canonical finish of a `finishReason` (`None`: unspecified).
pub(super) fn finish_of(reason: &str) -> Option<Finish> {
    Some(match reason {
        "STOP" | "FINISH_REASON_UNSPECIFIED" | "OTHER" | "MALFORMED_FUNCTION_CALL" => {
            Finish::EndTurn
        }
        "MAX_TOKENS" => Finish::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => Finish::ContentFilter,
        _ => return None,
    })
}

/// One candidate part: thinking, text or a call (numbered from `calls`). A call without an id
/// of Google's gets `call_{response id}_{n}`: unique across the turns of a conversation, so a
/// tool result later names exactly one call.
pub(super) fn part<'a>(p: Json<'a>, calls: &mut u32, response: &str) -> Option<Part<'a>> {
    if let Some(f) = p.get("functionCall") {
        let name = str_at(f, "name")?;
        let n = *calls;
        *calls += 1;
        let args = f.get("args").map_or(Cow::Borrowed("{}"), |a| {
            Cow::Owned(simd_json::prelude::Writable::encode(a))
        });
        let id = str_at(f, "id")
            .map_or_else(|| Cow::Owned(format!("call_{response}_{n}")), Cow::Borrowed);
        return Some(Part::ToolCall {
            id,
            name: Cow::Borrowed(name),
            arguments: args,
        });
    }
    let text = str_at(p, "text")?;
    if p.get("thought").and_then(|t| t.as_bool()) == Some(true) {
        return Some(Part::Thinking {
            text: Cow::Borrowed(text),
            signature: str_at(p, "thoughtSignature").map(Cow::Borrowed),
        });
    }
    Some(Part::Text(Cow::Borrowed(text)))
}

pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    if !v.is_object() {
        return Err(protocol("gemini: the answer is not an object"));
    }
    let cand = v
        .get("candidates")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first());
    let mut out = ChatResponse {
        id: Cow::Borrowed(str_at(v, "responseId").unwrap_or_default()),
        model: Cow::Borrowed(str_at(v, "modelVersion").unwrap_or_default()),
        created: None,
        parts: Vec::new(),
        finish: None,
        stop_sequence: None,
        usage: v.get("usageMetadata").map(usage_of).unwrap_or_default(),
    };
    let Some(cand) = cand else {
        // No candidate: the prompt itself was blocked.
        if v.get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some()
        {
            out.finish = Some(Finish::ContentFilter);
            return Ok(out);
        }
        return Err(protocol("gemini: the answer has no candidates"));
    };
    let mut calls = 0;
    let list = cand
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(|p| p.as_array());
    for p in list.into_iter().flatten() {
        if let Some(part) = part(p, &mut calls, &out.id) {
            out.parts.push(part);
        }
    }
    out.finish = str_at(cand, "finishReason").and_then(finish_of);
    if calls > 0 && out.finish == Some(Finish::EndTurn) {
        out.finish = Some(Finish::ToolCalls);
    }
    Ok(out)
}

/// Whether a 400's message says the prompt does not fit.
fn too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "exceeds the maximum number of tokens",
        "too long",
        "context window",
        "token count",
    ]
    .iter()
    .any(|n| m.contains(n))
}

/// The kind of a Google error (`{"error":{"code","message","status"}}`) with this status.
pub(super) fn kind_of(status: u16, google: Option<&str>, message: Option<&str>) -> Kind {
    match (status, google) {
        (400, _) if message.is_some_and(too_long) => Kind::UpstreamContextWindow,
        (_, Some("RESOURCE_EXHAUSTED")) => Kind::UpstreamRateLimited,
        (_, Some("UNAUTHENTICATED" | "PERMISSION_DENIED")) => Kind::UpstreamAuth,
        (_, Some("DEADLINE_EXCEEDED")) => Kind::UpstreamTimeout,
        (_, Some("UNAVAILABLE" | "INTERNAL")) => Kind::UpstreamServer,
        (400..=599, _) => Kind::from_upstream_status(status),
        _ => Kind::UpstreamProtocol,
    }
}

pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok();
    // Google answers `{"error":{…}}`, or a list of one such object.
    let err = parsed.as_ref().and_then(|v| {
        v.get("error")
            .or_else(|| v.as_array()?.first()?.get("error"))
    });
    let message = err.and_then(|e| str_at(e, "message"));
    let google = err.and_then(|e| str_at(e, "status"));
    GatewayError::new(
        kind_of(status, google, message),
        upstream_message("gemini", message, Some(status)),
    )
}

#[cfg(test)]
mod tests;
