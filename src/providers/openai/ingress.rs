//! The OpenAI chat-completions wire as a client speaks it, when the upstream speaks another
//! protocol: request bodies become canonical requests; canonical responses and stream events
//! become `chat.completion` bodies and `chat.completion.chunk` SSE events. Pure functions, no I/O.
//!
//! Decoding borrows every string from the parsed body and names the JSON path of whatever it
//! rejects. Anthropic thinking travels the way OpenAI-compatible clients carry it:
//! `reasoning_content` for the text and `thinking_blocks` (with signatures) for the round trip.

use std::borrow::Cow;
use std::fmt::Display;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_escaped, push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Effort, Event, Finish, Image, Json, Message, Part, Reasoning,
    ResponseFormat, Role, Stamp, Tool, ToolChoice,
};

/// Top-level fields OpenAI defines that the canonical form cannot carry.
const UNTRANSLATABLE: [&str; 12] = [
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "modalities",
    "audio",
    "prediction",
    "service_tier",
    "store",
    "metadata",
    "web_search_options",
    "functions",
    "function_call",
];

// === impl decode_request ===

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, message)
}

fn expected(path: impl Display, what: &str) -> GatewayError {
    bad(format!("{path}: expected {what}"))
}

fn string<'a>(v: Json<'a>, path: impl Display) -> Result<&'a str, GatewayError> {
    v.as_str().ok_or_else(|| expected(path, "a string"))
}

/// The string `v[key]`; `path` names `v` in the error.
fn string_at<'a>(v: Json<'a>, key: &str, path: impl Display) -> Result<&'a str, GatewayError> {
    v.get(key)
        .and_then(|x| x.as_str())
        .ok_or_else(|| expected(format_args!("{path}.{key}"), "a string"))
}

fn number(v: Json<'_>, path: &str) -> Result<f64, GatewayError> {
    v.cast_f64().ok_or_else(|| expected(path, "a number"))
}

fn count(v: Json<'_>, path: &str) -> Result<u64, GatewayError> {
    v.as_u64()
        .ok_or_else(|| expected(path, "a non-negative integer"))
}

fn boolean(v: Json<'_>, path: &str) -> Result<bool, GatewayError> {
    v.as_bool().ok_or_else(|| expected(path, "a boolean"))
}

/// A member that is present and not `null`.
fn member<'a>(v: Json<'a>, key: &str) -> Option<Json<'a>> {
    v.get(key).filter(|x| !x.is_null())
}

/// Decodes a chat-completions body.
pub fn decode_request<'a>(v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
    let body = v
        .as_object()
        .ok_or_else(|| bad("body: expected a JSON object"))?;
    let mut r = ChatRequest {
        model: Cow::Borrowed(string(
            v.get("model").ok_or_else(|| bad("model: required"))?,
            "model",
        )?),
        ..Default::default()
    };
    decode_messages(
        v.get("messages").ok_or_else(|| bad("messages: required"))?,
        &mut r,
    )?;
    for (key, value) in body.iter() {
        // `null` is how many clients spell "not set".
        if !value.is_null() {
            decode_field(&mut r, key, value)?;
        }
    }
    if let Some(n) = member(v, "max_completion_tokens") {
        r.max_tokens = Some(count(n, "max_completion_tokens")?);
    }
    Ok(r)
}

/// One top-level member other than `model` and `messages`.
fn decode_field<'a>(r: &mut ChatRequest<'a>, key: &str, v: Json<'a>) -> Result<(), GatewayError> {
    match key {
        "model" | "messages" | "max_completion_tokens" => {}
        "max_tokens" => r.max_tokens = Some(count(v, key)?),
        "temperature" => r.temperature = Some(number(v, key)?),
        "top_p" => r.top_p = Some(number(v, key)?),
        // Not OpenAI's, but OpenAI-compatible clients send it for providers that have it.
        "top_k" => r.top_k = Some(count(v, key)?),
        "stop" => r.stop = decode_stop(v)?,
        "stream" => r.stream = boolean(v, key)?,
        "stream_options" => {
            if let Some(u) = member(v, "include_usage") {
                r.include_usage = boolean(u, "stream_options.include_usage")?;
            }
        }
        "tools" => r.tools = decode_tools(v)?,
        "tool_choice" => r.tool_choice = Some(decode_tool_choice(v)?),
        "parallel_tool_calls" => r.parallel_tool_calls = Some(boolean(v, key)?),
        "response_format" => r.response_format = Some(decode_response_format(v)?),
        "user" => r.user = Some(Cow::Borrowed(string(v, key)?)),
        "reasoning_effort" => r.reasoning = Some(decode_effort(string(v, key)?)?),
        "n" => r.n = Some(count(v, key)?),
        "seed" => r.seed = Some(v.as_i64().ok_or_else(|| expected(key, "an integer"))?),
        "presence_penalty" => r.presence_penalty = Some(number(v, key)?),
        "frequency_penalty" => r.frequency_penalty = Some(number(v, key)?),
        _ => {
            // `false` (e.g. `"logprobs": false`) asks for nothing, so nothing is lost.
            let asked = v.as_bool() != Some(false);
            if let Some(name) = UNTRANSLATABLE.iter().find(|n| **n == key).filter(|_| asked) {
                r.ignored.push(Cow::Borrowed(name));
            }
        }
    }
    Ok(())
}

fn decode_stop<'a>(v: Json<'a>) -> Result<Vec<Cow<'a, str>>, GatewayError> {
    if let Some(s) = v.as_str() {
        return Ok(vec![Cow::Borrowed(s)]);
    }
    let list = v
        .as_array()
        .ok_or_else(|| expected("stop", "a string or an array of strings"))?;
    list.iter()
        .enumerate()
        .map(|(i, s)| string(s, format_args!("stop[{i}]")).map(Cow::Borrowed))
        .collect()
}

fn decode_effort(e: &str) -> Result<Reasoning, GatewayError> {
    Ok(match e {
        "minimal" => Reasoning::Effort(Effort::Minimal),
        "low" => Reasoning::Effort(Effort::Low),
        "medium" => Reasoning::Effort(Effort::Medium),
        "high" => Reasoning::Effort(Effort::High),
        "none" => Reasoning::Disabled,
        _ => {
            return Err(bad(format!(
                "reasoning_effort: expected one of none, minimal, low, medium, high, got {e:?}"
            )));
        }
    })
}

fn decode_tools<'a>(v: Json<'a>) -> Result<Vec<Tool<'a>>, GatewayError> {
    let list = v.as_array().ok_or_else(|| expected("tools", "an array"))?;
    let mut tools = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let kind = member(t, "type").and_then(|k| k.as_str());
        if let Some(kind) = kind.filter(|k| *k != "function") {
            return Err(bad(format!(
                "tools[{i}].type: only \"function\" tools are supported, got {kind:?}"
            )));
        }
        let f =
            member(t, "function").ok_or_else(|| bad(format!("tools[{i}].function: required")))?;
        let path = || format!("tools[{i}].function");
        let description = match member(f, "description") {
            Some(_) => Some(Cow::Borrowed(string_at(f, "description", path())?)),
            None => None,
        };
        tools.push(Tool {
            openapi: false,
            name: Cow::Borrowed(string_at(f, "name", path())?),
            description,
            parameters: member(f, "parameters"),
        });
    }
    Ok(tools)
}

fn decode_tool_choice<'a>(v: Json<'a>) -> Result<ToolChoice<'a>, GatewayError> {
    const SHAPE: &str =
        "\"auto\", \"none\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}";
    match v.as_str() {
        Some("auto") => return Ok(ToolChoice::Auto),
        Some("none") => return Ok(ToolChoice::None),
        Some("required") => return Ok(ToolChoice::Required),
        _ => {}
    }
    let name = v
        .get("function")
        .and_then(|f| f.get("name"))
        .and_then(|n| n.as_str())
        .filter(|_| v.get("type").and_then(|t| t.as_str()) == Some("function"));
    name.map(|n| ToolChoice::Tool(Cow::Borrowed(n)))
        .ok_or_else(|| expected("tool_choice", SHAPE))
}

fn decode_response_format<'a>(v: Json<'a>) -> Result<ResponseFormat<'a>, GatewayError> {
    match v.get("type").and_then(|t| t.as_str()) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let s = member(v, "json_schema")
                .ok_or_else(|| bad("response_format.json_schema: required"))?;
            let name = member(s, "name").map_or(Ok("response"), |n| {
                string(n, "response_format.json_schema.name")
            })?;
            Ok(ResponseFormat::JsonSchema {
                name: Cow::Borrowed(name),
                schema: member(s, "schema"),
                strict: member(s, "strict").and_then(|b| b.as_bool()),
            })
        }
        _ => Err(expected(
            "response_format.type",
            "\"text\", \"json_object\" or \"json_schema\"",
        )),
    }
}

fn decode_messages<'a>(v: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    let list = v
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| expected("messages", "a non-empty array"))?;
    // Set while the last canonical message holds tool results: they and the user message
    // that follows them form one user turn.
    let mut after_tool = false;
    for (i, m) in list.iter().enumerate() {
        match string_at(m, "role", format_args!("messages[{i}]"))? {
            "system" | "developer" => {
                for part in content_parts(m, i, Allow::Text)? {
                    if let Part::Text(t) = part {
                        r.system.push(t);
                    }
                }
            }
            "user" => {
                let parts = content_parts(m, i, Allow::Images)?;
                push_user(r, parts, after_tool);
                after_tool = false;
            }
            "assistant" => {
                let parts = assistant_parts(m, i)?;
                r.messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
                after_tool = false;
            }
            "tool" => {
                push_user(r, vec![tool_result(m, i)?], after_tool);
                after_tool = true;
            }
            "function" => {
                return Err(bad(format!(
                    "messages[{i}].role: \"function\" messages are not supported; \
                     use tools and \"tool\" messages"
                )));
            }
            other => return Err(bad(format!("messages[{i}].role: unknown role {other:?}"))),
        }
    }
    Ok(())
}

fn push_user<'a>(r: &mut ChatRequest<'a>, parts: Vec<Part<'a>>, merge: bool) {
    match r.messages.last_mut() {
        Some(last) if merge && last.role == Role::User => last.parts.extend(parts),
        _ => r.messages.push(Message {
            role: Role::User,
            parts,
        }),
    }
}

/// Which content parts a role may send.
#[derive(Clone, Copy, PartialEq)]
enum Allow {
    Text,
    Images,
    /// Assistant content: text and refusals (kept as text).
    Refusals,
}

/// Message `i`'s `content`: a string or an array of parts.
fn content_parts<'a>(m: Json<'a>, i: usize, allow: Allow) -> Result<Vec<Part<'a>>, GatewayError> {
    let c = m.get("content");
    if let Some(s) = c.and_then(|c| c.as_str()) {
        return Ok(vec![Part::Text(Cow::Borrowed(s))]);
    }
    let list = c.and_then(|c| c.as_array()).ok_or_else(|| {
        expected(
            format_args!("messages[{i}].content"),
            "a string or an array of parts",
        )
    })?;
    let mut parts = Vec::with_capacity(list.len());
    for (j, p) in list.iter().enumerate() {
        let text = |key: &str| {
            string_at(p, key, format_args!("messages[{i}].content[{j}]")).map(Cow::Borrowed)
        };
        let kind = p.get("type").and_then(|t| t.as_str()).unwrap_or_default();
        let part = match (kind, allow) {
            ("text", _) => Part::Text(text("text")?),
            ("refusal", Allow::Refusals) => Part::Text(text("refusal")?),
            ("image_url", Allow::Images) => Part::Image(image_part(p, i, j)?),
            _ => {
                return Err(bad(format!(
                    "messages[{i}].content[{j}].type: unsupported content part {kind:?} here"
                )));
            }
        };
        parts.push(part);
    }
    Ok(parts)
}

/// `{"type":"image_url","image_url":{"url":…}}`; a `data:` URL carries the image itself.
fn image_part<'a>(p: Json<'a>, i: usize, j: usize) -> Result<Image<'a>, GatewayError> {
    let path = || format!("messages[{i}].content[{j}].image_url.url");
    let field = p.get("image_url");
    let url = field
        .and_then(|f| f.as_str())
        .or_else(|| field.and_then(|f| f.get("url")).and_then(|u| u.as_str()))
        .ok_or_else(|| expected(path(), "a string"))?;
    let Some(rest) = url.strip_prefix("data:") else {
        return Ok(Image::Url(Cow::Borrowed(url)));
    };
    let (meta, data) = rest.split_once(',').unwrap_or((rest, ""));
    match meta.strip_suffix(";base64") {
        Some(media_type) if !media_type.is_empty() && !data.is_empty() => Ok(Image::Base64 {
            media_type: Cow::Borrowed(media_type),
            data: Cow::Borrowed(data),
        }),
        _ => Err(expected(
            path(),
            "an http(s) URL or a data:<media type>;base64,<data> URL",
        )),
    }
}

/// An assistant turn: thinking first (it must lead when it goes back to Anthropic), then
/// content, then tool calls.
fn assistant_parts<'a>(m: Json<'a>, i: usize) -> Result<Vec<Part<'a>>, GatewayError> {
    if member(m, "function_call").is_some() {
        return Err(bad(format!(
            "messages[{i}].function_call: legacy function calls are not supported; use tool_calls"
        )));
    }
    let mut parts = Vec::new();
    if let Some(blocks) = member(m, "thinking_blocks") {
        thinking_blocks(blocks, i, &mut parts)?;
    } else if member(m, "reasoning_content").is_some() {
        let text = string_at(m, "reasoning_content", format_args!("messages[{i}]"))?;
        if !text.is_empty() {
            parts.push(Part::Thinking {
                text: Cow::Borrowed(text),
                signature: None,
            });
        }
    }
    if member(m, "content").is_some() {
        parts.extend(content_parts(m, i, Allow::Refusals)?);
    }
    if let Some(calls) = member(m, "tool_calls") {
        let list = calls
            .as_array()
            .ok_or_else(|| expected(format_args!("messages[{i}].tool_calls"), "an array"))?;
        for (j, call) in list.iter().enumerate() {
            parts.push(tool_call(call, i, j)?);
        }
    }
    Ok(parts)
}

/// `thinking_blocks`, the form in which OpenAI-compatible clients return Anthropic thinking.
fn thinking_blocks<'a>(
    v: Json<'a>,
    i: usize,
    parts: &mut Vec<Part<'a>>,
) -> Result<(), GatewayError> {
    let list = v
        .as_array()
        .ok_or_else(|| expected(format_args!("messages[{i}].thinking_blocks"), "an array"))?;
    for (j, b) in list.iter().enumerate() {
        let text = |key: &str| {
            string_at(b, key, format_args!("messages[{i}].thinking_blocks[{j}]")).map(Cow::Borrowed)
        };
        match b.get("type").and_then(|t| t.as_str()) {
            Some("thinking") => parts.push(Part::Thinking {
                text: text("thinking")?,
                signature: match member(b, "signature") {
                    Some(_) => Some(text("signature")?),
                    None => None,
                },
            }),
            Some("redacted_thinking") => parts.push(Part::RedactedThinking(text("data")?)),
            _ => {
                return Err(expected(
                    format_args!("messages[{i}].thinking_blocks[{j}].type"),
                    "\"thinking\" or \"redacted_thinking\"",
                ));
            }
        }
    }
    Ok(())
}

fn tool_call<'a>(call: Json<'a>, i: usize, j: usize) -> Result<Part<'a>, GatewayError> {
    let kind = member(call, "type").and_then(|k| k.as_str());
    if let Some(kind) = kind.filter(|k| *k != "function") {
        return Err(bad(format!(
            "messages[{i}].tool_calls[{j}].type: only \"function\" tool calls are supported, \
             got {kind:?}"
        )));
    }
    let id = string_at(call, "id", format_args!("messages[{i}].tool_calls[{j}]"))?;
    let f = member(call, "function")
        .ok_or_else(|| bad(format!("messages[{i}].tool_calls[{j}].function: required")))?;
    let path = || format!("messages[{i}].tool_calls[{j}].function");
    let name = string_at(f, "name", path())?;
    let arguments = match member(f, "arguments") {
        Some(_) => string_at(f, "arguments", path())?,
        None => "",
    };
    Ok(Part::ToolCall {
        id: Cow::Borrowed(id),
        name: Cow::Borrowed(name),
        arguments: Cow::Borrowed(arguments),
    })
}

/// `{"role":"tool","tool_call_id":…,"content":…}` as a tool result part.
fn tool_result<'a>(m: Json<'a>, i: usize) -> Result<Part<'a>, GatewayError> {
    let id = string_at(m, "tool_call_id", format_args!("messages[{i}]"))?;
    let content = match member(m, "content") {
        Some(_) => content_parts(m, i, Allow::Text)?,
        None => Vec::new(),
    };
    Ok(Part::ToolResult {
        id: Cow::Borrowed(id),
        content,
        is_error: false,
    })
}

// === impl encode_response ===

fn finish_reason(f: Finish) -> &'static str {
    match f {
        Finish::EndTurn | Finish::StopSequence | Finish::Paused => "stop",
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
    }
}

fn write_usage(u: &Usage, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    push_u64(out, u.input);
    out.extend_from_slice(b",\"completion_tokens\":");
    push_u64(out, u.output);
    out.extend_from_slice(b",\"total_tokens\":");
    push_u64(out, u.input.saturating_add(u.output));
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    push_u64(out, u.cache_read);
    out.extend_from_slice(b"}}");
}

/// Writes the parts' texts of one kind as a single JSON string.
fn write_joined<'p, 'a: 'p>(texts: impl Iterator<Item = &'p Cow<'a, str>>, out: &mut Vec<u8>) {
    out.push(b'"');
    for t in texts {
        push_escaped(out, t.as_bytes());
    }
    out.push(b'"');
}

fn write_thinking_block(p: &Part<'_>, out: &mut Vec<u8>) {
    match p {
        Part::Thinking { text, signature } => {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            push_str(out, text);
            if let Some(s) = signature {
                out.extend_from_slice(b",\"signature\":");
                push_str(out, s);
            }
            out.push(b'}');
        }
        Part::RedactedThinking(data) => {
            out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
            push_str(out, data);
            out.push(b'}');
        }
        _ => {}
    }
}

/// Writes a `chat.completion` body.
pub fn encode_response(r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    push_str(out, &stamp.answer_id(&r.id, "chatcmpl-"));
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    push_u64(out, r.created.unwrap_or(stamp.created));
    out.extend_from_slice(b",\"model\":");
    push_str(
        out,
        if r.model.is_empty() {
            stamp.model
        } else {
            &r.model
        },
    );
    out.extend_from_slice(b",\"choices\":[{\"index\":0,\"message\":");
    write_message(&r.parts, out);
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    match r.finish {
        Some(f) => push_str(out, finish_reason(f)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}],\"usage\":");
    write_usage(&r.usage, out);
    out.push(b'}');
}

fn write_message(parts: &[Part<'_>], out: &mut Vec<u8>) {
    let texts = || {
        parts.iter().filter_map(|p| match p {
            Part::Text(t) => Some(t),
            _ => None,
        })
    };
    let thoughts = || {
        parts.iter().filter_map(|p| match p {
            Part::Thinking { text, .. } => Some(text),
            _ => None,
        })
    };
    let is_thinking =
        |p: &&Part<'_>| matches!(p, Part::Thinking { .. } | Part::RedactedThinking(_));
    out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":");
    if texts().next().is_some() {
        write_joined(texts(), out);
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"refusal\":null");
    if thoughts().next().is_some() {
        out.extend_from_slice(b",\"reasoning_content\":");
        write_joined(thoughts(), out);
    }
    if parts.iter().any(|p| is_thinking(&p)) {
        out.extend_from_slice(b",\"thinking_blocks\":[");
        for (i, p) in parts.iter().filter(is_thinking).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_thinking_block(p, out);
        }
        out.push(b']');
    }
    let mut calls = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some((id, name, arguments)),
            _ => None,
        })
        .peekable();
    if calls.peek().is_some() {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (i, (id, name, arguments)) in calls.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            super::write_tool_call(None, id, name, arguments, out);
        }
        out.push(b']');
    }
    out.push(b'}');
}

// === impl StreamEncoder ===

/// Writes canonical stream events as `chat.completion.chunk` SSE events.
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    started: bool,
    usage: Usage,
}

impl StreamEncoder {
    pub fn new(stamp: &Stamp<'_>, include_usage: bool) -> Self {
        StreamEncoder {
            // Until the upstream says what its id is.
            id: stamp.answer_id("", "chatcmpl-").into_owned(),
            model: stamp.model.to_owned(),
            created: stamp.created,
            include_usage,
            started: false,
            usage: Usage::default(),
        }
    }

    /// Appends the SSE events for `ev` (none for some) to `out`.
    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        match ev {
            Event::Start { id, model, usage } => {
                self.usage = *usage;
                if !self.started {
                    if !id.is_empty() {
                        self.id = id.to_string();
                    }
                    if !model.is_empty() {
                        self.model = model.to_string();
                    }
                    self.start(out);
                }
            }
            Event::Usage(u) => self.usage = *u,
            Event::Ping => {}
            Event::Done => self.done(out),
            Event::Error { kind, message } => {
                out.extend_from_slice(b"data: ");
                GatewayError::new(*kind, message.as_ref()).write_openai_body(out);
                out.extend_from_slice(b"\n\n");
            }
            Event::Finish { reason, .. } => {
                self.ensure_started(out);
                self.open_chunk(out);
                out.extend_from_slice(b"{}");
                close_chunk(out, Some(finish_reason(*reason)));
            }
            content => {
                self.ensure_started(out);
                self.open_chunk(out);
                write_delta(content, out);
                close_chunk(out, None);
            }
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        self.started = true;
        self.open_chunk(out);
        out.extend_from_slice(b"{\"role\":\"assistant\",\"content\":\"\"}");
        close_chunk(out, None);
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.start(out);
        }
    }

    /// `data: {"id":…,…,"choices":[{"index":0,"delta":` — the delta follows.
    fn open_chunk(&self, out: &mut Vec<u8>) {
        self.open(out);
        out.extend_from_slice(b"[{\"index\":0,\"delta\":");
    }

    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":`
    fn open(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: {\"id\":");
        push_str(out, &self.id);
        out.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        push_u64(out, self.created);
        out.extend_from_slice(b",\"model\":");
        push_str(out, &self.model);
        out.extend_from_slice(b",\"choices\":");
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        if self.include_usage {
            self.open(out);
            out.extend_from_slice(b"[],\"usage\":");
            write_usage(&self.usage, out);
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

fn close_chunk(out: &mut Vec<u8>, finish: Option<&str>) {
    out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
    match finish {
        Some(f) => push_str(out, f),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b"}]}\n\n");
}

/// The delta object of a content event.
fn write_delta(ev: &Event<'_>, out: &mut Vec<u8>) {
    match ev {
        Event::Text(t) => {
            out.extend_from_slice(b"{\"content\":");
            push_str(out, t);
            out.push(b'}');
        }
        Event::Thinking(t) => {
            out.extend_from_slice(b"{\"reasoning_content\":");
            push_str(out, t);
            out.push(b'}');
        }
        Event::ThinkingSignature(s) => {
            out.extend_from_slice(
                b"{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":",
            );
            push_str(out, s);
            out.extend_from_slice(b"}]}");
        }
        Event::RedactedThinking(data) => {
            out.extend_from_slice(b"{\"thinking_blocks\":[");
            write_thinking_block(&Part::RedactedThinking(Cow::Borrowed(data)), out);
            out.extend_from_slice(b"]}");
        }
        Event::ToolCall { index, id, name } => {
            out.extend_from_slice(b"{\"tool_calls\":[");
            super::write_tool_call(Some(*index as usize), id, name, "", out);
            out.extend_from_slice(b"]}");
        }
        Event::ToolArguments { index, fragment } => {
            out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
            push_u64(out, u64::from(*index));
            out.extend_from_slice(b",\"function\":{\"arguments\":");
            push_str(out, fragment);
            out.extend_from_slice(b"}}]}");
        }
        _ => out.extend_from_slice(b"{}"),
    }
}

#[cfg(test)]
mod tests;
