//! The OpenAI chat-completions wire as a provider expects it, reached from another ingress
//! protocol through the canonical form: writing the request body, reading a whole response or
//! one stream chunk back into canonical values, and classifying the provider's error bodies.
//!
//! Pure functions without I/O. Decoded strings borrow from the parsed upstream bytes. What the
//! chat-completions API cannot express is named in `dropped`, never lost silently. Nothing an
//! upstream sends can make these functions panic: a malformed shape is `UpstreamProtocol`.

use std::borrow::Cow;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_escaped, push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Effort, Event, Finish, Image, Json, Message, Part, Reasoning,
    ResponseFormat, Role, Stamp, ToolChoice, note_dropped,
};
use crate::providers::encode::{
    Commas, arguments_of, float_field, key, push_texts, system_message,
};

// === request ===

/// Writes the chat-completions body for `r`, with `model` = `stamp.model`.
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
    float_field(out, "top_p", r.top_p);
    if !r.stop.is_empty() {
        key(out, "stop");
        let mut c = Commas::default();
        out.push(b'[');
        for s in &r.stop {
            c.next(out);
            push_str(out, s);
        }
        out.push(b']');
    }
    if r.top_k.is_some() {
        note_dropped(dropped, "top_k");
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    }
    write_tools(r, out);
    if let Some(user) = &r.user {
        key(out, "user");
        push_str(out, user);
    }
    let effort = match r.reasoning {
        Some(Reasoning::Budget(b)) => Some(Effort::from_budget(b)),
        Some(Reasoning::Effort(e)) => Some(e),
        Some(Reasoning::Disabled) | None => None,
    };
    if let Some(e) = effort {
        key(out, "reasoning_effort");
        push_str(out, effort_name(e));
    }
    write_response_format(r.response_format.as_ref(), out);
    if let Some(n) = r.n {
        key(out, "n");
        push_u64(out, n);
    }
    if let Some(seed) = r.seed {
        key(out, "seed");
        out.extend_from_slice(itoa::Buffer::new().format(seed).as_bytes());
    }
    float_field(out, "presence_penalty", r.presence_penalty);
    float_field(out, "frequency_penalty", r.frequency_penalty);
    out.push(b'}');
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

/// A user turn: its tool results as `role: "tool"` messages first (OpenAI wants them right
/// after the assistant turn that called), then the rest as one user message.
fn write_user(m: &Message<'_>, c: &mut Commas, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let mut rest = 0;
    let mut only_text = true;
    for p in &m.parts {
        match p {
            Part::ToolResult { id, content, .. } => {
                c.next(out);
                out.extend_from_slice(b"{\"role\":\"tool\",\"tool_call_id\":");
                push_str(out, id);
                out.extend_from_slice(b",\"content\":");
                push_texts(out, content);
                out.push(b'}');
                if content.iter().any(|p| matches!(p, Part::Image(_))) {
                    note_dropped(dropped, "tool_result image");
                }
            }
            Part::Text(_) => rest += 1,
            Part::Image(_) => {
                rest += 1;
                only_text = false;
            }
            Part::Thinking { .. } | Part::RedactedThinking(_) => note_dropped(dropped, "thinking"),
            Part::ToolCall { .. } => note_dropped(dropped, "user tool_use"),
        }
    }
    let had_results = m.parts.iter().any(|p| matches!(p, Part::ToolResult { .. }));
    if rest == 0 && had_results {
        return;
    }
    c.next(out);
    out.extend_from_slice(b"{\"role\":\"user\",\"content\":");
    if only_text {
        push_texts(out, &m.parts);
    } else {
        write_content_parts(&m.parts, out);
    }
    out.push(b'}');
}

/// `[{"type":"text",…},{"type":"image_url",…}]` for the text and image parts of a turn.
fn write_content_parts(parts: &[Part<'_>], out: &mut Vec<u8>) {
    let mut c = Commas::default();
    out.push(b'[');
    for p in parts {
        match p {
            Part::Text(t) => {
                c.next(out);
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                push_str(out, t);
                out.push(b'}');
            }
            Part::Image(img) => {
                c.next(out);
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

fn write_assistant(m: &Message<'_>, c: &mut Commas, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    let has_text = m.parts.iter().any(|p| matches!(p, Part::Text(_)));
    let has_calls = m.parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    c.next(out);
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    if has_text {
        push_texts(out, &m.parts);
    } else if has_calls {
        out.extend_from_slice(b"null");
    } else {
        // OpenAI rejects an assistant message with neither content nor tool calls.
        out.extend_from_slice(b"\"\"");
    }
    if has_calls {
        out.extend_from_slice(b",\"tool_calls\":[");
        let mut calls = Commas::default();
        for p in &m.parts {
            if let Part::ToolCall {
                id,
                name,
                arguments,
            } = p
            {
                calls.next(out);
                super::write_tool_call(None, id, name, arguments, out);
            }
        }
        out.push(b']');
    }
    out.push(b'}');
    for p in &m.parts {
        match p {
            Part::Thinking { .. } | Part::RedactedThinking(_) => note_dropped(dropped, "thinking"),
            Part::Image(_) => note_dropped(dropped, "assistant image"),
            Part::ToolResult { .. } => note_dropped(dropped, "assistant tool_result"),
            Part::Text(_) | Part::ToolCall { .. } => {}
        }
    }
}

fn write_tools(r: &ChatRequest<'_>, out: &mut Vec<u8>) {
    // OpenAI rejects `tool_choice`/`parallel_tool_calls` without tools, so they go together.
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
    if let Some(choice) = &r.tool_choice {
        key(out, "tool_choice");
        match choice {
            ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
            ToolChoice::Required => out.extend_from_slice(b"\"required\""),
            ToolChoice::None => out.extend_from_slice(b"\"none\""),
            ToolChoice::Tool(name) => {
                out.extend_from_slice(b"{\"type\":\"function\",\"function\":{\"name\":");
                push_str(out, name);
                out.extend_from_slice(b"}}");
            }
        }
    }
    if r.parallel_tool_calls == Some(false) {
        out.extend_from_slice(b",\"parallel_tool_calls\":false");
    }
}

fn write_response_format(f: Option<&ResponseFormat<'_>>, out: &mut Vec<u8>) {
    match f {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            out.extend_from_slice(b",\"response_format\":{\"type\":\"json_object\"}");
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            out.extend_from_slice(
                b",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":",
            );
            push_str(out, name);
            if let Some(schema) = schema {
                key(out, "schema");
                let _ = schema.write(out);
            }
            if let Some(s) = strict {
                key(out, "strict");
                out.extend_from_slice(if *s { b"true" } else { b"false" });
            }
            out.extend_from_slice(b"}}");
        }
    }
}

fn effort_name(e: Effort) -> &'static str {
    match e {
        Effort::Minimal => "minimal",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
    }
}

// === response ===

fn protocol(message: impl std::fmt::Display) -> GatewayError {
    GatewayError::new(Kind::UpstreamProtocol, format!("openai: {message}"))
}

/// `v[key]` as a non-empty string.
fn text<'a>(v: Json<'a>, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
}

fn finish_of(reason: &str) -> Finish {
    match reason {
        "length" => Finish::Length,
        "tool_calls" | "function_call" => Finish::ToolCalls,
        "content_filter" => Finish::ContentFilter,
        // "stop", and whatever an OpenAI-compatible server says for a natural end.
        _ => Finish::EndTurn,
    }
}

/// `prompt_tokens` counts the cached share and `completion_tokens` the reasoning share, as
/// [`Usage`] does.
fn usage_of(u: Json<'_>) -> Usage {
    let n = |v: Option<Json<'_>>| v.and_then(|n| n.as_u64()).unwrap_or(0);
    Usage {
        input: n(u.get("prompt_tokens")),
        output: n(u.get("completion_tokens")),
        cache_read: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        cache_write: 0,
        reasoning: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    }
}

/// Reads a `chat.completion` body (only choice 0; the canonical form has one answer).
pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    let choice = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
        .ok_or_else(|| protocol("response has no choices"))?;
    let msg = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| protocol("choices[0].message: missing"))?;
    let mut parts = Vec::new();
    if let Some(t) = text(msg, "reasoning_content").or_else(|| text(msg, "reasoning")) {
        parts.push(Part::Thinking {
            text: Cow::Borrowed(t),
            signature: None,
        });
    }
    if let Some(t) = text(msg, "content") {
        parts.push(Part::Text(Cow::Borrowed(t)));
    }
    let refusal = text(msg, "refusal");
    if let Some(t) = refusal {
        parts.push(Part::Text(Cow::Borrowed(t)));
    }
    if let Some(calls) = msg.get("tool_calls").and_then(|c| c.as_array()) {
        for (i, call) in calls.iter().enumerate() {
            let f = call.get("function");
            let name = f.and_then(|f| text(f, "name"));
            let (Some(id), Some(name)) = (text(call, "id"), name) else {
                return Err(protocol(format!(
                    "choices[0].message.tool_calls[{i}]: no id or function name"
                )));
            };
            parts.push(Part::ToolCall {
                id: Cow::Borrowed(id),
                name: Cow::Borrowed(name),
                arguments: arguments_of(f),
            });
        }
    }
    let finish = match choice.get("finish_reason").and_then(|f| f.as_str()) {
        _ if refusal.is_some() => Some(Finish::ContentFilter),
        Some(reason) => Some(finish_of(reason)),
        None => None,
    };
    Ok(ChatResponse {
        id: Cow::Borrowed(v.get("id").and_then(|s| s.as_str()).unwrap_or_default()),
        model: Cow::Borrowed(v.get("model").and_then(|s| s.as_str()).unwrap_or_default()),
        created: v.get("created").and_then(|c| c.as_u64()),
        parts,
        finish,
        stop_sequence: None,
        usage: v.get("usage").map(usage_of).unwrap_or_default(),
    })
}

// === stream ===

/// Reads `chat.completion.chunk` events one at a time. OpenAI's stream has no explicit
/// start or block structure, so the decoder remembers whether `Start` went out, which tool
/// calls were announced, and whether the model refused (to report the finish as a filter).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    refused: bool,
    /// Tool-call indexes already announced with `Event::ToolCall`.
    tools: Vec<u32>,
    /// The tool call the last fragment belonged to, for servers that omit `index`.
    last_tool: Option<u32>,
}

impl StreamDecoder {
    /// Decodes one SSE event's data (parsed in place).
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        let (empty, done) = {
            let d = data.trim_ascii();
            (d.is_empty(), d == b"[DONE]")
        };
        if empty {
            return Ok(());
        }
        if done {
            emit(Event::Done);
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("stream chunk is not valid JSON: {e}")))?;
        self.chunk(&v, emit);
        Ok(())
    }

    fn chunk<'v>(&mut self, v: Json<'v>, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            let (kind, message) = described("openai", None, e);
            emit(Event::Error {
                kind,
                message: Cow::Owned(message),
            });
            return;
        }
        if v.get("object").and_then(|o| o.as_str()) == Some("error") {
            let (kind, message) = described("openai", None, v);
            emit(Event::Error {
                kind,
                message: Cow::Owned(message),
            });
            return;
        }
        // Only choice 0 is carried; a client that asked for `n` > 1 was told it was dropped.
        let choice = v.get("choices").and_then(|c| c.as_array()).and_then(|c| {
            c.iter()
                .find(|ch| ch.get("index").and_then(|i| i.as_u64()).unwrap_or(0) == 0)
        });
        let usage = v.get("usage").filter(|u| u.is_object());
        let id = v.get("id").and_then(|s| s.as_str()).unwrap_or_default();
        if !self.started {
            // Azure opens with a content-filter preamble that has no id and no choices.
            if id.is_empty() && choice.is_none() && usage.is_none() {
                return;
            }
            self.started = true;
            emit(Event::Start {
                id: Cow::Borrowed(id),
                model: Cow::Borrowed(v.get("model").and_then(|s| s.as_str()).unwrap_or_default()),
                usage: Usage::default(),
            });
        }
        if let Some(c) = choice {
            self.choice(c, emit);
        }
        if let Some(u) = usage {
            emit(Event::Usage(usage_of(u)));
        }
    }

    fn choice<'v>(&mut self, c: Json<'v>, emit: &mut dyn FnMut(Event<'_>)) {
        if let Some(d) = c.get("delta") {
            if let Some(t) = text(d, "reasoning_content").or_else(|| text(d, "reasoning")) {
                emit(Event::Thinking(Cow::Borrowed(t)));
            }
            if let Some(t) = text(d, "content") {
                emit(Event::Text(Cow::Borrowed(t)));
            }
            if let Some(t) = text(d, "refusal") {
                self.refused = true;
                emit(Event::Text(Cow::Borrowed(t)));
            }
            if let Some(calls) = d.get("tool_calls").and_then(|t| t.as_array()) {
                for call in calls {
                    self.tool_call(call, emit);
                }
            }
        }
        if let Some(reason) = c.get("finish_reason").and_then(|f| f.as_str()) {
            let reason = if self.refused {
                Finish::ContentFilter
            } else {
                finish_of(reason)
            };
            emit(Event::Finish {
                reason,
                stop_sequence: None,
            });
        }
    }

    /// One `delta.tool_calls[]` entry: the first one naming a call announces it, the rest
    /// (and its own `arguments`) carry argument fragments.
    fn tool_call<'v>(&mut self, call: Json<'v>, emit: &mut dyn FnMut(Event<'_>)) {
        if self.tools.len() > super::super::canonical::MAX_TOOL_CALLS {
            return; // the translator has ended the stream over this already
        }
        let f = call.get("function");
        let id = text(call, "id");
        let name = f.and_then(|f| text(f, "name"));
        let explicit = call
            .get("index")
            .and_then(|i| i.as_u64())
            .and_then(|i| u32::try_from(i).ok());
        let index = match (explicit, id.or(name)) {
            (Some(i), _) => i,
            // No index: a named entry is the next call, a bare fragment continues the last.
            (None, Some(_)) => self.tools.iter().max().map_or(0, |m| m.saturating_add(1)),
            (None, None) => match self.last_tool {
                Some(i) => i,
                None => return,
            },
        };
        self.last_tool = Some(index);
        if !self.tools.contains(&index) && (id.is_some() || name.is_some()) {
            self.tools.push(index);
            emit(Event::ToolCall {
                index,
                id: id.map_or_else(|| Cow::Owned(format!("call_{index}")), Cow::Borrowed),
                name: Cow::Borrowed(name.unwrap_or_default()),
            });
        }
        if let Some(fragment) = f.and_then(|f| text(f, "arguments")) {
            emit(Event::ToolArguments {
                index,
                fragment: Cow::Borrowed(fragment),
            });
        }
    }
}

// === errors ===

/// Classifies a non-2xx answer from an OpenAI-protocol provider.
pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    classify_as("openai", status, body)
}

/// [`classify`] for another protocol that answers errors the same way, named `vendor` in the
/// client's message.
pub fn classify_as(vendor: &str, status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let (kind, message) = match simd_json::to_borrowed_value(&mut copy) {
        Ok(v) => match v.get("error").filter(|e| !e.is_null()) {
            Some(e) => described(vendor, Some(status), e),
            // vLLM and others put the error object at the top level.
            None => described(vendor, Some(status), &v),
        },
        Err(_) => (
            kind_of(Some(status), "", "", ""),
            format!("{vendor}: HTTP {status}"),
        ),
    };
    GatewayError::new(kind, message)
}

/// The kind and client-facing message of an OpenAI error object (`{"message","type","code"}`,
/// or a bare string). `status` is `None` mid-stream, where a numeric `code` stands in for it.
fn described(vendor: &str, status: Option<u16>, e: Json<'_>) -> (Kind, String) {
    let message = e
        .as_str()
        .or_else(|| e.get("message").and_then(|m| m.as_str()))
        .filter(|m| !m.is_empty());
    let code = e.get("code");
    let status = status.or_else(|| {
        code.and_then(|c| c.as_u64())
            .and_then(|c| u16::try_from(c).ok())
    });
    let code = code.and_then(|c| c.as_str()).unwrap_or_default();
    let ty = e.get("type").and_then(|t| t.as_str()).unwrap_or_default();
    let kind = kind_of(status, code, ty, message.unwrap_or_default());
    (kind, upstream_message(vendor, message, status))
}

fn kind_of(status: Option<u16>, code: &str, ty: &str, message: &str) -> Kind {
    let client_error = matches!(status, None | Some(400 | 404 | 409 | 413 | 422));
    if client_error
        && (code == "context_length_exceeded"
            || message
                .to_ascii_lowercase()
                .contains("maximum context length"))
    {
        return Kind::UpstreamContextWindow;
    }
    if client_error && matches!(code, "content_policy_violation" | "content_filter") {
        return Kind::UpstreamContentPolicy;
    }
    match status {
        Some(s) => Kind::from_upstream_status(s),
        None => match (ty, code) {
            ("invalid_request_error", _) => Kind::UpstreamBadRequest,
            ("authentication_error" | "permission_error", _) | (_, "invalid_api_key") => {
                Kind::UpstreamAuth
            }
            ("rate_limit_error" | "rate_limit_exceeded", _) | (_, "rate_limit_exceeded") => {
                Kind::UpstreamRateLimited
            }
            ("timeout" | "timeout_error", _) => Kind::UpstreamTimeout,
            _ => Kind::UpstreamServer,
        },
    }
}

#[cfg(test)]
mod tests;
