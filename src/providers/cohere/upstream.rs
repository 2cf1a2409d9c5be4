//! The Cohere v2 chat wire as a provider expects it, always reached through the canonical
//! form: the `/v2/chat` request body, a whole answer and the typed stream events read back,
//! and Cohere's error bodies classified. Pure functions; nothing an upstream sends can make
//! them panic (a malformed shape is `UpstreamProtocol`). What Cohere cannot express is named
//! in `dropped`.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_escaped, push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Event, Finish, Image, Json, Message, Part, ResponseFormat, Role,
    Stamp, ToolChoice, note_dropped,
};
use crate::providers::encode::{arguments_of, float_field, key, push_texts};

// === request ===

/// Opens the next element of a JSON array being written.
fn comma(first: &mut bool, out: &mut Vec<u8>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

/// Writes the `/v2/chat` body for `r`, with `model` = `stamp.model`.
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
    float_field(out, "temperature", r.temperature);
    float_field(out, "p", r.top_p);
    if let Some(k) = r.top_k {
        key(out, "k");
        push_u64(out, k);
    }
    if !r.stop.is_empty() {
        key(out, "stop_sequences");
        out.push(b'[');
        let mut first = true;
        for s in &r.stop {
            comma(&mut first, out);
            push_str(out, s);
        }
        out.push(b']');
    }
    if let Some(seed) = r.seed {
        key(out, "seed");
        out.extend_from_slice(seed.to_string().as_bytes());
    }
    float_field(out, "frequency_penalty", r.frequency_penalty);
    float_field(out, "presence_penalty", r.presence_penalty);
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    write_tools(r, out, dropped);
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"}")
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"");
            if let Some(s) = schema {
                key(out, "json_schema");
                let _ = simd_json::prelude::Writable::write(*s, out);
            }
            out.push(b'}');
        }
        Some(ResponseFormat::Text) | None => {}
    }
    if r.n.is_some_and(|n| n > 1) {
        note_dropped(dropped, "n");
    }
    if r.user.is_some() {
        note_dropped(dropped, "user");
    }
    if r.reasoning.is_some() {
        note_dropped(dropped, "reasoning");
    }
    if r.parallel_tool_calls.is_some() {
        note_dropped(dropped, "parallel_tool_calls");
    }
    out.push(b'}');
}

fn write_messages(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    out.push(b'[');
    let mut first = true;
    if !r.system.is_empty() {
        comma(&mut first, out);
        out.extend_from_slice(b"{\"role\":\"system\",\"content\":");
        let parts: Vec<Part<'_>> = r.system.iter().map(|s| Part::Text(s.clone())).collect();
        push_texts(out, &parts);
        out.push(b'}');
    }
    for m in &r.messages {
        match m.role {
            Role::User => write_user(m, &mut first, out),
            Role::Assistant => write_assistant(m, &mut first, out, dropped),
        }
    }
    out.push(b']');
}

/// A user turn: its tool results as `tool` messages, then the rest as one `user` message.
fn write_user(m: &Message<'_>, first: &mut bool, out: &mut Vec<u8>) {
    for p in &m.parts {
        if let Part::ToolResult { id, content, .. } = p {
            comma(first, out);
            out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
            push_str(out, id);
            out.extend_from_slice(b",\"content\":");
            push_texts(out, content);
            out.push(b'}');
        }
    }
    let rest: Vec<&Part<'_>> = m
        .parts
        .iter()
        .filter(|p| matches!(p, Part::Text(_) | Part::Image(_)))
        .collect();
    if rest.is_empty() {
        return;
    }
    comma(first, out);
    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
    if let [Part::Text(t)] = rest.as_slice() {
        push_str(out, t);
    } else {
        out.push(b'[');
        let mut f = true;
        for p in rest {
            comma(&mut f, out);
            match p {
                Part::Text(t) => {
                    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                    push_str(out, t);
                    out.push(b'}');
                }
                Part::Image(img) => {
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
                _ => {}
            }
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn write_assistant(
    m: &Message<'_>,
    first: &mut bool,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    comma(first, out);
    out.extend_from_slice(b"{\"role\":\"assistant\"");
    if m.parts.iter().any(|p| matches!(p, Part::Text(_))) {
        key(out, "content");
        push_texts(out, &m.parts);
    }
    let mut calls = m.parts.iter().filter_map(|p| match p {
        Part::ToolCall {
            id,
            name,
            arguments,
        } => Some((id, name, arguments)),
        _ => None,
    });
    if let Some(call) = calls.next() {
        key(out, "tool_calls");
        out.push(b'[');
        for (i, (id, name, arguments)) in std::iter::once(call).chain(calls).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            push_str(out, id);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            push_str(out, name);
            out.extend_from_slice(b",\"arguments\":");
            push_str(out, arguments);
            out.extend_from_slice(b"}}");
        }
        out.push(b']');
    }
    if m.parts
        .iter()
        .any(|p| matches!(p, Part::Thinking { .. } | Part::RedactedThinking(_)))
    {
        note_dropped(dropped, "thinking");
    }
    out.push(b'}');
}

fn write_tools(r: &ChatRequest<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    if !r.tools.is_empty() {
        key(out, "tools");
        out.push(b'[');
        let mut first = true;
        for t in &r.tools {
            comma(&mut first, out);
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
    }
    match &r.tool_choice {
        Some(ToolChoice::Required) => out.extend_from_slice(b",\"tool_choice\":\"REQUIRED\""),
        Some(ToolChoice::None) => out.extend_from_slice(b",\"tool_choice\":\"NONE\""),
        // Cohere cannot name the one tool to call.
        Some(ToolChoice::Tool(_)) => note_dropped(dropped, "tool_choice"),
        Some(ToolChoice::Auto) | None => {}
    }
}

// === response ===

fn protocol(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::UpstreamProtocol, message)
}

fn str_at<'a>(v: Json<'a>, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

fn finish_of(reason: &str) -> Option<Finish> {
    Some(match reason {
        "COMPLETE" => Finish::EndTurn,
        "STOP_SEQUENCE" => Finish::StopSequence,
        "MAX_TOKENS" => Finish::Length,
        "TOOL_CALL" => Finish::ToolCalls,
        _ => return None,
    })
}

/// `usage.tokens` (what the model read and wrote), else `usage.billed_units`. Cohere reports
/// no cached or reasoning tokens.
pub fn usage_of(u: Option<Json<'_>>) -> Usage {
    let Some(u) = u else {
        return Usage::default();
    };
    let counts = u
        .get("tokens")
        .filter(|t| t.is_object())
        .or_else(|| u.get("billed_units"));
    let n = |k: &str| {
        counts
            .and_then(|c| c.get(k))
            // Cohere has sent these as floats (`12.0`) as well as integers.
            .and_then(|x| {
                x.as_u64()
                    .or_else(|| x.cast_f64().map(|f| f.max(0.0) as u64))
            })
            .unwrap_or(0)
    };
    Usage {
        input: n("input_tokens"),
        output: n("output_tokens"),
        ..Usage::default()
    }
}

/// Reads a whole `/v2/chat` answer.
pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    let msg = v
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| protocol("cohere: response has no message"))?;
    let mut parts = Vec::new();
    match msg.get("content") {
        Some(c) if c.is_str() => parts.push(Part::Text(Cow::Borrowed(c.as_str().unwrap_or("")))),
        Some(c) => {
            for block in c.as_array().into_iter().flatten() {
                if str_at(block, "type") == Some("text")
                    && let Some(t) = str_at(block, "text")
                {
                    parts.push(Part::Text(Cow::Borrowed(t)));
                }
            }
        }
        None => {}
    }
    for (i, call) in msg
        .get("tool_calls")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let f = call.get("function");
        let (Some(id), Some(name)) = (str_at(call, "id"), f.and_then(|f| str_at(f, "name"))) else {
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
    let reason = str_at(v, "finish_reason").unwrap_or_default();
    if matches!(reason, "ERROR" | "TIMEOUT") {
        let kind = if reason == "TIMEOUT" {
            Kind::UpstreamTimeout
        } else {
            Kind::UpstreamServer
        };
        return Err(GatewayError::new(
            kind,
            format!("cohere: the answer ended with finish_reason {reason}"),
        ));
    }
    Ok(ChatResponse {
        id: Cow::Borrowed(str_at(v, "id").unwrap_or_default()),
        model: Cow::Borrowed(""),
        created: None,
        parts,
        finish: finish_of(reason),
        stop_sequence: None,
        usage: usage_of(v.get("usage")),
    })
}

// === stream ===

/// Reads Cohere's typed stream events. Tool calls are numbered by their `index` among the
/// answer's tool calls; `message-end` carries the finish reason and usage, and ends the
/// stream (Cohere sends no sentinel after it).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Tool calls announced so far.
    tools: u32,
}

impl StreamDecoder {
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        if data.trim_ascii().is_empty() {
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("cohere: stream event is not valid JSON: {e}")))?;
        let msg = v.get("delta").and_then(|d| d.get("message"));
        let index = v.get("index").and_then(|i| i.as_u64()).unwrap_or(0) as u32;
        match str_at(&v, "type").unwrap_or_default() {
            "message-start" => emit(Event::Start {
                id: Cow::Borrowed(str_at(&v, "id").unwrap_or_default()),
                model: Cow::Borrowed(""),
                usage: Usage::default(),
            }),
            "content-delta" => {
                let text = msg
                    .and_then(|m| m.get("content"))
                    .and_then(|c| str_at(c, "text"));
                if let Some(t) = text.filter(|t| !t.is_empty()) {
                    emit(Event::Text(Cow::Borrowed(t)));
                }
            }
            "tool-call-start" => {
                let call = msg.and_then(|m| m.get("tool_calls"));
                let f = call.and_then(|c| c.get("function"));
                let (Some(id), Some(name)) = (
                    call.and_then(|c| str_at(c, "id")),
                    f.and_then(|f| str_at(f, "name")),
                ) else {
                    return Err(protocol("cohere: tool-call-start without an id or name"));
                };
                self.tools = self.tools.max(index + 1);
                emit(Event::ToolCall {
                    index,
                    id: Cow::Borrowed(id),
                    name: Cow::Borrowed(name),
                });
                if let Some(a) = f
                    .and_then(|f| str_at(f, "arguments"))
                    .filter(|a| !a.is_empty())
                {
                    emit(Event::ToolArguments {
                        index,
                        fragment: Cow::Borrowed(a),
                    });
                }
            }
            "tool-call-delta" => {
                let fragment = msg
                    .and_then(|m| m.get("tool_calls"))
                    .and_then(|c| c.get("function"))
                    .and_then(|f| str_at(f, "arguments"));
                if let Some(a) = fragment.filter(|a| !a.is_empty()) {
                    if index >= self.tools {
                        return Err(protocol(format!(
                            "cohere: arguments for tool call {index}, which never started"
                        )));
                    }
                    emit(Event::ToolArguments {
                        index,
                        fragment: Cow::Borrowed(a),
                    });
                }
            }
            "message-end" => {
                let delta = v.get("delta");
                let reason = delta.and_then(|d| str_at(d, "finish_reason")).unwrap_or("");
                // A generation that failed says why in `delta.error`.
                if let Some(e) = delta.and_then(|d| str_at(d, "error")) {
                    emit(Event::Error {
                        kind: Kind::UpstreamServer,
                        message: Cow::Owned(upstream_message("cohere", Some(e), None)),
                    });
                    return Ok(());
                }
                if matches!(reason, "ERROR" | "TIMEOUT") {
                    emit(Event::Error {
                        kind: if reason == "TIMEOUT" {
                            Kind::UpstreamTimeout
                        } else {
                            Kind::UpstreamServer
                        },
                        message: Cow::Owned(format!(
                            "cohere: the stream ended with finish_reason {reason}"
                        )),
                    });
                    return Ok(());
                }
                emit(Event::Finish {
                    reason: finish_of(reason).unwrap_or(Finish::EndTurn),
                    stop_sequence: None,
                });
                emit(Event::Usage(usage_of(delta.and_then(|d| d.get("usage")))));
                emit(Event::Done);
            }
            // content-start/-end, tool-plan-delta, tool-call-end, citations: nothing to carry.
            _ => {}
        }
        Ok(())
    }
}

// === errors ===

/// Classifies a non-2xx `/v2/chat` answer (`{"id","message"}`).
pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok();
    let message = parsed.as_ref().and_then(|v| str_at(v, "message"));
    let kind = match status {
        400 | 422
            if message.is_some_and(|m| {
                let m = m.to_ascii_lowercase();
                m.contains("too many tokens") || m.contains("context length")
            }) =>
        {
            Kind::UpstreamContextWindow
        }
        422 => Kind::UpstreamBadRequest,
        499 => Kind::UpstreamTimeout,
        400..=599 => Kind::from_upstream_status(status),
        _ => Kind::UpstreamProtocol,
    };
    GatewayError::new(kind, upstream_message("cohere", message, Some(status)))
}

#[cfg(test)]
mod tests;
