//! Bedrock's Converse API bodies: a canonical request written as a `Converse` request (the
//! model is in the path), a whole answer read back, and Bedrock's error bodies classified.
//! Images must be bytes (a URL image is dropped and named); thinking goes back only with its
//! signature; a tool choice of "none" has no Converse form (the tools stay, since a
//! conversation with tool blocks needs them). No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Finish, Image, Json, Part, Reasoning, Role, Stamp, ToolChoice,
    arguments_object, note_dropped,
};
use crate::providers::encode::{Commas, float_field, key};

pub(super) fn str_at<'a>(v: Json<'a>, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// Converse's image `format` for a media type.
fn format_of(media_type: &str) -> Option<&'static str> {
    Some(match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

fn image(out: &mut Vec<u8>, c: &mut Commas, img: &Image<'_>, dropped: &mut Vec<String>) {
    let (media_type, data) = match img {
        Image::Base64 { media_type, data } => (media_type.as_ref(), data.as_ref()),
        Image::Url(u) => match u
            .strip_prefix("data:")
            .and_then(|u| u.split_once(";base64,"))
        {
            Some((mt, data)) => (mt, data),
            None => return note_dropped(dropped, "image_url"),
        },
    };
    let Some(format) = format_of(media_type) else {
        return note_dropped(dropped, "image_url");
    };
    c.next(out);
    out.extend_from_slice(b"{\"image\":{\"format\":\"");
    out.extend_from_slice(format.as_bytes());
    out.extend_from_slice(b"\",\"source\":{\"bytes\":");
    push_str(out, data);
    out.extend_from_slice(b"}}}");
}

fn content(out: &mut Vec<u8>, parts: &[Part<'_>], dropped: &mut Vec<String>) {
    let mut c = Commas::default();
    for p in parts {
        match p {
            Part::Text(t) => {
                c.next(out);
                out.extend_from_slice(b"{\"text\":");
                push_str(out, t);
                out.push(b'}');
            }
            Part::Image(img) => image(out, &mut c, img, dropped),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                c.next(out);
                out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
                push_str(out, id);
                out.extend_from_slice(b",\"name\":");
                push_str(out, name);
                out.extend_from_slice(b",\"input\":");
                out.extend_from_slice(arguments_object(arguments).unwrap_or("{}").as_bytes());
                out.extend_from_slice(b"}}");
            }
            Part::ToolResult {
                id,
                content,
                is_error,
            } => {
                c.next(out);
                out.extend_from_slice(b"{\"toolResult\":{\"toolUseId\":");
                push_str(out, id);
                out.extend_from_slice(b",\"content\":[");
                let mut inner = Commas::default();
                for p in content {
                    match p {
                        Part::Text(t) => {
                            inner.next(out);
                            out.extend_from_slice(b"{\"text\":");
                            push_str(out, t);
                            out.push(b'}');
                        }
                        Part::Image(img) => image(out, &mut inner, img, dropped),
                        _ => {}
                    }
                }
                if !inner.any() {
                    out.extend_from_slice(b"{\"text\":\"\"}");
                }
                out.push(b']');
                if *is_error {
                    out.extend_from_slice(b",\"status\":\"error\"");
                }
                out.extend_from_slice(b"}}");
            }
            Part::Thinking {
                text,
                signature: Some(sig),
            } => {
                c.next(out);
                out.extend_from_slice(b"{\"reasoningContent\":{\"reasoningText\":{\"text\":");
                push_str(out, text);
                out.extend_from_slice(b",\"signature\":");
                push_str(out, sig);
                out.extend_from_slice(b"}}}");
            }
            Part::Thinking {
                signature: None, ..
            } => note_dropped(dropped, "thinking"),
            Part::RedactedThinking(data) => {
                c.next(out);
                out.extend_from_slice(b"{\"reasoningContent\":{\"redactedContent\":");
                push_str(out, data);
                out.extend_from_slice(b"}}");
            }
        }
    }
    if !c.any() {
        out.extend_from_slice(b"{\"text\":\"\"}");
    }
}

pub fn encode_request(
    r: &ChatRequest<'_>,
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    out.extend_from_slice(b"{\"messages\":[");
    let mut c = Commas::default();
    for m in &r.messages {
        c.next(out);
        out.extend_from_slice(match m.role {
            Role::User => b"{\"role\":\"user\",\"content\":[".as_slice(),
            Role::Assistant => b"{\"role\":\"assistant\",\"content\":[",
        });
        content(out, &m.parts, dropped);
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if !r.system.is_empty() {
        key(out, "system");
        out.push(b'[');
        let mut c = Commas::default();
        for s in &r.system {
            c.next(out);
            out.extend_from_slice(b"{\"text\":");
            push_str(out, s);
            out.push(b'}');
        }
        out.push(b']');
    }
    let budget = match r.reasoning {
        Some(Reasoning::Effort(e)) => Some(e.budget()),
        Some(Reasoning::Budget(b)) => Some(b),
        Some(Reasoning::Disabled) | None => None,
    };
    let mut max_tokens = r.max_tokens.unwrap_or(stamp.default_max_tokens);
    if let Some(b) = budget.filter(|&b| max_tokens <= b) {
        max_tokens = b.saturating_add(max_tokens);
    }
    out.extend_from_slice(b",\"inferenceConfig\":{\"maxTokens\":");
    push_u64(out, max_tokens);
    float_field(out, "temperature", r.temperature);
    float_field(out, "topP", r.top_p);
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
    out.push(b'}');
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"toolConfig\":{\"tools\":[");
        let mut c = Commas::default();
        for t in &r.tools {
            c.next(out);
            out.extend_from_slice(b"{\"toolSpec\":{\"name\":");
            push_str(out, &t.name);
            if let Some(d) = &t.description {
                key(out, "description");
                push_str(out, d);
            }
            out.extend_from_slice(b",\"inputSchema\":{\"json\":");
            t.write_schema(out);
            out.extend_from_slice(b"}}}");
        }
        out.push(b']');
        match &r.tool_choice {
            Some(ToolChoice::Auto) => out.extend_from_slice(b",\"toolChoice\":{\"auto\":{}}"),
            Some(ToolChoice::Required) => out.extend_from_slice(b",\"toolChoice\":{\"any\":{}}"),
            Some(ToolChoice::Tool(name)) => {
                out.extend_from_slice(b",\"toolChoice\":{\"tool\":{\"name\":");
                push_str(out, name);
                out.extend_from_slice(b"}}");
            }
            Some(ToolChoice::None) => note_dropped(dropped, "tool_choice"),
            None => {}
        }
        out.push(b'}');
    }
    if r.top_k.is_some() || budget.is_some() {
        out.extend_from_slice(b",\"additionalModelRequestFields\":{");
        let mut c = Commas::default();
        if let Some(k) = r.top_k {
            c.next(out);
            out.extend_from_slice(b"\"top_k\":");
            push_u64(out, k);
        }
        if let Some(b) = budget {
            c.next(out);
            out.extend_from_slice(b"\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
            push_u64(out, b);
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.push(b'}');
    let absent = [
        ("response_format", r.response_format.is_some()),
        ("user", r.user.is_some()),
        ("seed", r.seed.is_some()),
        ("n", r.n.is_some_and(|n| n > 1)),
        ("presence_penalty", r.presence_penalty.is_some()),
        ("frequency_penalty", r.frequency_penalty.is_some()),
        ("parallel_tool_calls", r.parallel_tool_calls == Some(false)),
    ];
    for (name, set) in absent {
        if set {
            note_dropped(dropped, name);
        }
    }
}

// === answers ===

fn n(u: Option<Json<'_>>, k: &str) -> u64 {
    u.and_then(|u| u.get(k))
        .and_then(|x| x.as_u64())
        .unwrap_or(0)
}

/// Converse's `inputTokens` leaves the cached prompt out; [`Usage::input`] counts it all.
pub(super) fn usage_of(u: Json<'_>) -> Usage {
    let u = Some(u);
    let (read, write) = (n(u, "cacheReadInputTokens"), n(u, "cacheWriteInputTokens"));
    Usage {
        input: n(u, "inputTokens") + read + write,
        output: n(u, "outputTokens"),
        cache_read: read,
        cache_write: write,
        reasoning: 0,
    }
}

pub(super) fn finish_of(reason: &str) -> Finish {
    match reason {
        "tool_use" => Finish::ToolCalls,
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "stop_sequence" => Finish::StopSequence,
        "guardrail_intervened" | "content_filtered" => Finish::ContentFilter,
        _ => Finish::EndTurn,
    }
}

pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    let msg = v
        .get("output")
        .and_then(|o| o.get("message"))
        .ok_or_else(|| {
            GatewayError::new(
                Kind::UpstreamProtocol,
                "bedrock: the answer has no output.message",
            )
        })?;
    let mut parts = Vec::new();
    for b in msg
        .get("content")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(t) = str_at(b, "text") {
            parts.push(Part::Text(Cow::Borrowed(t)));
        } else if let Some(t) = b.get("toolUse") {
            let input = t.get("input").map_or(Cow::Borrowed("{}"), |i| {
                Cow::Owned(simd_json::prelude::Writable::encode(i))
            });
            parts.push(Part::ToolCall {
                id: Cow::Borrowed(str_at(t, "toolUseId").unwrap_or_default()),
                name: Cow::Borrowed(str_at(t, "name").unwrap_or_default()),
                arguments: input,
            });
        } else if let Some(r) = b.get("reasoningContent") {
            if let Some(rt) = r.get("reasoningText") {
                parts.push(Part::Thinking {
                    text: Cow::Borrowed(str_at(rt, "text").unwrap_or_default()),
                    signature: str_at(rt, "signature").map(Cow::Borrowed),
                });
            } else if let Some(d) = str_at(r, "redactedContent") {
                parts.push(Part::RedactedThinking(Cow::Borrowed(d)));
            }
        }
    }
    Ok(ChatResponse {
        id: Cow::Borrowed(""),
        model: Cow::Borrowed(""),
        created: None,
        parts,
        finish: Some(finish_of(str_at(v, "stopReason").unwrap_or("end_turn"))),
        stop_sequence: None,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}

/// Whether a message says the prompt does not fit the model.
fn too_long(m: &str) -> bool {
    let m = m.to_ascii_lowercase();
    [
        "input is too long",
        "too many input tokens",
        "context window",
        "prompt is too long",
    ]
    .iter()
    .any(|n| m.contains(n))
}

/// The kind of an exception named in a stream (`throttlingException`, …).
pub(super) fn exception_kind(name: &str, message: Option<&str>) -> Kind {
    let name = name.to_ascii_lowercase();
    if name.starts_with("throttling") || name.starts_with("servicequotaexceeded") {
        Kind::UpstreamRateLimited
    } else if name.starts_with("validation") {
        if message.is_some_and(too_long) {
            Kind::UpstreamContextWindow
        } else {
            Kind::UpstreamBadRequest
        }
    } else if name.starts_with("modeltimeout") {
        Kind::UpstreamTimeout
    } else if name.starts_with("accessdenied") || name.starts_with("unrecognizedclient") {
        Kind::UpstreamAuth
    } else {
        Kind::UpstreamServer
    }
}

pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| str_at(v, "message").or_else(|| str_at(v, "Message")));
    let kind = match status {
        400 if message.is_some_and(too_long) => Kind::UpstreamContextWindow,
        424 => Kind::UpstreamServer,
        400..=599 => Kind::from_upstream_status(status),
        _ => Kind::UpstreamProtocol,
    };
    GatewayError::new(kind, upstream_message("bedrock", message, Some(status)))
}
