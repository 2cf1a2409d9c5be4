//! The Anthropic Messages wire as a client speaks it (`POST /v1/messages`), when the provider
//! speaks another protocol: decoding the client's request into the canonical form, and writing
//! a canonical response or stream back in Anthropic's shape.
//!
//! Pure functions without I/O. Request strings borrow from the parsed body. A request the
//! gateway cannot carry faithfully is refused with a `BadRequest` naming the JSON path; a field
//! it can only leave out is named in `ChatRequest::ignored`. Output is written straight into
//! the caller's buffer. No input, however malformed, makes these functions panic.

use std::borrow::Cow;
use std::fmt;

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Event, Finish, Image, Json, Message, Part, Reasoning, Role, Stamp,
    Tool, ToolChoice, arguments_object, note_once,
};

// === request ===

fn bad(message: String) -> GatewayError {
    GatewayError::new(Kind::BadRequest, message)
}

/// `v[key]`, treating an explicit `null` as absent (clients send both).
fn opt<'a>(v: Json<'a>, key: &str) -> Option<Json<'a>> {
    v.get(key).filter(|x| !x.is_null())
}

/// `v[key]` as a required string; `at` is the JSON path prefix of `v` (ending in `.`, or empty).
fn req_str<'a>(
    v: Json<'a>,
    at: &dyn fmt::Display,
    key: &str,
) -> Result<Cow<'a, str>, GatewayError> {
    let x = opt(v, key).ok_or_else(|| bad(format!("{at}{key}: field required")))?;
    x.as_str()
        .map(Cow::Borrowed)
        .ok_or_else(|| bad(format!("{at}{key}: must be a string")))
}

fn opt_str<'a>(
    v: Json<'a>,
    at: &dyn fmt::Display,
    key: &str,
) -> Result<Option<Cow<'a, str>>, GatewayError> {
    match opt(v, key) {
        None => Ok(None),
        Some(_) => req_str(v, at, key).map(Some),
    }
}

fn opt_f64(v: Json<'_>, key: &str) -> Result<Option<f64>, GatewayError> {
    opt(v, key)
        .map(|x| {
            x.cast_f64()
                .ok_or_else(|| bad(format!("{key}: must be a number")))
        })
        .transpose()
}

fn opt_u64(v: Json<'_>, at: &dyn fmt::Display, key: &str) -> Result<Option<u64>, GatewayError> {
    opt(v, key)
        .map(|x| {
            x.as_u64()
                .ok_or_else(|| bad(format!("{at}{key}: must be a non-negative integer")))
        })
        .transpose()
}

/// Decodes a Messages API request body.
pub fn decode_request<'a>(v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
    if !v.is_object() {
        return Err(bad("body: must be a JSON object".to_string()));
    }
    let model = req_str(v, &"", "model")?;
    let max_tokens = opt_u64(v, &"", "max_tokens")?
        .ok_or_else(|| bad("max_tokens: field required".to_string()))?;
    if max_tokens == 0 {
        return Err(bad("max_tokens: must be at least 1".to_string()));
    }
    let mut r = ChatRequest {
        model,
        max_tokens: Some(max_tokens),
        // Anthropic streams always carry usage.
        include_usage: true,
        ..ChatRequest::default()
    };
    if let Some(s) = opt(v, "system") {
        decode_system(s, &mut r)?;
    }
    let messages = opt(v, "messages").ok_or_else(|| bad("messages: field required".to_string()))?;
    let messages = messages
        .as_array()
        .ok_or_else(|| bad("messages: must be an array".to_string()))?;
    if messages.is_empty() {
        return Err(bad("messages: at least one message is required".to_string()));
    }
    for (i, m) in messages.iter().enumerate() {
        let m = decode_message(m, i, &mut r.ignored)?;
        r.messages.push(m);
    }
    if let Some(stops) = opt(v, "stop_sequences") {
        let arr = stops
            .as_array()
            .ok_or_else(|| bad("stop_sequences: must be an array of strings".to_string()))?;
        for (i, s) in arr.iter().enumerate() {
            let s = s
                .as_str()
                .ok_or_else(|| bad(format!("stop_sequences[{i}]: must be a string")))?;
            r.stop.push(Cow::Borrowed(s));
        }
    }
    r.temperature = opt_f64(v, "temperature")?;
    r.top_p = opt_f64(v, "top_p")?;
    r.top_k = opt_u64(v, &"", "top_k")?;
    if let Some(s) = opt(v, "stream") {
        r.stream = s
            .as_bool()
            .ok_or_else(|| bad("stream: must be a boolean".to_string()))?;
    }
    if let Some(tools) = opt(v, "tools") {
        decode_tools(tools, &mut r)?;
    }
    if let Some(choice) = opt(v, "tool_choice") {
        decode_tool_choice(choice, &mut r)?;
    }
    if let Some(meta) = opt(v, "metadata") {
        r.user = opt_str(meta, &"metadata.", "user_id")?;
    }
    if let Some(thinking) = opt(v, "thinking") {
        r.reasoning = decode_thinking(thinking, &mut r.ignored)?;
    }
    for name in [
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    ] {
        if opt(v, name).is_some() {
            note_once(&mut r.ignored, Cow::Borrowed(name));
        }
    }
    Ok(r)
}

fn decode_system<'a>(s: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    if let Some(text) = s.as_str() {
        if !text.is_empty() {
            r.system.push(Cow::Borrowed(text));
        }
        return Ok(());
    }
    let blocks = s
        .as_array()
        .ok_or_else(|| bad("system: must be a string or an array of text blocks".to_string()))?;
    for (j, b) in blocks.iter().enumerate() {
        let at = At::System(j);
        if opt(b, "cache_control").is_some() {
            note_once(&mut r.ignored, Cow::Borrowed("cache_control"));
        }
        match req_str(b, &at, "type")?.as_ref() {
            "text" => r.system.push(req_str(b, &at, "text")?),
            other => {
                return Err(bad(format!("{at}type: expected \"text\", got \"{other}\"")));
            }
        }
    }
    Ok(())
}

/// Where a block sits, for error messages (built only on error); displays with a trailing `.`.
#[derive(Clone, Copy)]
enum At {
    System(usize),
    Tool(usize),
    Block(usize, usize),
    Nested(usize, usize, usize),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::System(j) => write!(f, "system[{j}]."),
            At::Tool(i) => write!(f, "tools[{i}]."),
            At::Block(i, j) => write!(f, "messages[{i}].content[{j}]."),
            At::Nested(i, j, k) => write!(f, "messages[{i}].content[{j}].content[{k}]."),
        }
    }
}

fn decode_message<'a>(
    m: Json<'a>,
    i: usize,
    ignored: &mut Vec<Cow<'a, str>>,
) -> Result<Message<'a>, GatewayError> {
    let role = match req_str(m, &format_args!("messages[{i}]."), "role")?.as_ref() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => {
            return Err(bad(format!(
                "messages[{i}].role: must be \"user\" or \"assistant\""
            )));
        }
    };
    let content =
        opt(m, "content").ok_or_else(|| bad(format!("messages[{i}].content: field required")))?;
    let parts = if let Some(text) = content.as_str() {
        vec![Part::Text(Cow::Borrowed(text))]
    } else if let Some(blocks) = content.as_array() {
        let mut parts = Vec::with_capacity(blocks.len());
        for (j, b) in blocks.iter().enumerate() {
            parts.push(decode_block(b, At::Block(i, j), role, ignored)?);
        }
        parts
    } else {
        return Err(bad(format!(
            "messages[{i}].content: must be a string or an array of content blocks"
        )));
    };
    Ok(Message { role, parts })
}

/// Block types Anthropic accepts that have no equivalent on the upstreams this path serves.
fn unsupported(ty: &str) -> bool {
    matches!(
        ty,
        "document" | "search_result" | "server_tool_use" | "container_upload"
    ) || ty.ends_with("_tool_result")
        || ty.starts_with("mcp_")
}

fn block_type_error(ty: &str, at: At) -> GatewayError {
    if unsupported(ty) {
        bad(format!(
            "{at}type: \"{ty}\" blocks are not supported for this upstream"
        ))
    } else {
        bad(format!("{at}type: unknown block type \"{ty}\""))
    }
}

fn decode_block<'a>(
    b: Json<'a>,
    at: At,
    role: Role,
    ignored: &mut Vec<Cow<'a, str>>,
) -> Result<Part<'a>, GatewayError> {
    if opt(b, "cache_control").is_some() {
        note_once(ignored, Cow::Borrowed("cache_control"));
    }
    let ty = req_str(b, &at, "type")?;
    let placed = |wanted: Role| {
        if role == wanted {
            Ok(())
        } else {
            let side = if wanted == Role::User {
                "user"
            } else {
                "assistant"
            };
            Err(bad(format!(
                "{at}type: \"{ty}\" blocks may only appear in {side} messages"
            )))
        }
    };
    match ty.as_ref() {
        "text" => Ok(Part::Text(req_str(b, &at, "text")?)),
        "image" => decode_image(b, at),
        "tool_use" => {
            placed(Role::Assistant)?;
            decode_tool_use(b, at)
        }
        "tool_result" => {
            placed(Role::User)?;
            decode_tool_result(b, at, ignored)
        }
        "thinking" => {
            placed(Role::Assistant)?;
            Ok(Part::Thinking {
                text: req_str(b, &at, "thinking")?,
                signature: opt_str(b, &at, "signature")?,
            })
        }
        "redacted_thinking" => {
            placed(Role::Assistant)?;
            Ok(Part::RedactedThinking(req_str(b, &at, "data")?))
        }
        other => Err(block_type_error(other, at)),
    }
}

fn decode_image(b: Json<'_>, at: At) -> Result<Part<'_>, GatewayError> {
    let src = opt(b, "source")
        .filter(|s| s.is_object())
        .ok_or_else(|| bad(format!("{at}source: field required")))?;
    let src_at = format_args!("{at}source.");
    let image = match req_str(src, &src_at, "type")?.as_ref() {
        "base64" => Image::Base64 {
            media_type: req_str(src, &src_at, "media_type")?,
            data: req_str(src, &src_at, "data")?,
        },
        "url" => Image::Url(req_str(src, &src_at, "url")?),
        "file" => {
            return Err(bad(format!(
                "{at}source.type: \"file\" sources are not supported for this upstream"
            )));
        }
        other => {
            return Err(bad(format!(
                "{at}source.type: unknown image source type \"{other}\""
            )));
        }
    };
    Ok(Part::Image(image))
}

fn decode_tool_use(b: Json<'_>, at: At) -> Result<Part<'_>, GatewayError> {
    let arguments = match opt(b, "input") {
        None => Cow::Borrowed("{}"),
        Some(input) if input.is_object() => Cow::Owned(input.encode()),
        Some(_) => return Err(bad(format!("{at}input: must be an object"))),
    };
    Ok(Part::ToolCall {
        id: req_str(b, &at, "id")?,
        name: req_str(b, &at, "name")?,
        arguments,
    })
}

fn decode_tool_result<'a>(
    b: Json<'a>,
    at: At,
    ignored: &mut Vec<Cow<'a, str>>,
) -> Result<Part<'a>, GatewayError> {
    let At::Block(i, j) = at else {
        return Err(block_type_error("tool_result", at));
    };
    let id = req_str(b, &at, "tool_use_id")?;
    let mut content = Vec::new();
    match opt(b, "content") {
        None => {}
        Some(c) if c.is_str() => {
            content.push(Part::Text(Cow::Borrowed(c.as_str().unwrap_or_default())))
        }
        Some(c) => {
            let blocks = c.as_array().ok_or_else(|| {
                bad(format!(
                    "{at}content: must be a string or an array of content blocks"
                ))
            })?;
            for (k, nb) in blocks.iter().enumerate() {
                let nat = At::Nested(i, j, k);
                if opt(nb, "cache_control").is_some() {
                    note_once(ignored, Cow::Borrowed("cache_control"));
                }
                match req_str(nb, &nat, "type")?.as_ref() {
                    "text" => content.push(Part::Text(req_str(nb, &nat, "text")?)),
                    "image" => content.push(decode_image(nb, nat)?),
                    other => return Err(block_type_error(other, nat)),
                }
            }
        }
    }
    let is_error = match opt(b, "is_error") {
        None => false,
        Some(e) => e
            .as_bool()
            .ok_or_else(|| bad(format!("{at}is_error: must be a boolean")))?,
    };
    Ok(Part::ToolResult {
        id,
        content,
        is_error,
    })
}

fn decode_tools<'a>(tools: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    let arr = tools
        .as_array()
        .ok_or_else(|| bad("tools: must be an array".to_string()))?;
    for (i, t) in arr.iter().enumerate() {
        // Typed tools (`web_search_20250305`, `bash_…`) run on Anthropic's side only.
        if let Some(ty) = opt(t, "type").and_then(|x| x.as_str())
            && ty != "custom"
        {
            note_once(&mut r.ignored, Cow::Owned(format!("tools[].{ty}")));
            continue;
        }
        if opt(t, "cache_control").is_some() {
            note_once(&mut r.ignored, Cow::Borrowed("cache_control"));
        }
        let at = At::Tool(i);
        let parameters = match opt(t, "input_schema") {
            None => None,
            Some(s) if s.is_object() => Some(s),
            Some(_) => return Err(bad(format!("{at}input_schema: must be an object"))),
        };
        r.tools.push(Tool {
            openapi: false,
            name: req_str(t, &at, "name")?,
            description: opt_str(t, &at, "description")?,
            parameters,
        });
    }
    Ok(())
}

fn decode_tool_choice<'a>(c: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    let at = "tool_choice.";
    r.tool_choice = Some(match req_str(c, &at, "type")?.as_ref() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Tool(req_str(c, &at, "name")?),
        other => {
            return Err(bad(format!(
                "tool_choice.type: unknown tool choice \"{other}\""
            )));
        }
    });
    if opt(c, "disable_parallel_tool_use").and_then(|d| d.as_bool()) == Some(true) {
        r.parallel_tool_calls = Some(false);
    }
    Ok(())
}

fn decode_thinking<'a>(
    t: Json<'a>,
    ignored: &mut Vec<Cow<'a, str>>,
) -> Result<Option<Reasoning>, GatewayError> {
    let at = "thinking.";
    Ok(match req_str(t, &at, "type")?.as_ref() {
        "enabled" => Some(Reasoning::Budget(
            opt_u64(t, &at, "budget_tokens")?
                .ok_or_else(|| bad("thinking.budget_tokens: field required".to_string()))?,
        )),
        "disabled" => Some(Reasoning::Disabled),
        // A newer mode this gateway does not know: leave thinking to the upstream's default.
        _ => {
            note_once(ignored, Cow::Borrowed("thinking"));
            None
        }
    })
}

// === response ===

fn stop_reason(f: Option<Finish>) -> &'static str {
    match f {
        Some(Finish::EndTurn) => "\"end_turn\"",
        Some(Finish::StopSequence) => "\"stop_sequence\"",
        Some(Finish::Length) => "\"max_tokens\"",
        Some(Finish::ToolCalls) => "\"tool_use\"",
        Some(Finish::ContentFilter) => "\"refusal\"",
        Some(Finish::Paused) => "\"pause_turn\"",
        None => "null",
    }
}

/// `{"input_tokens":…,"output_tokens":…,"cache_creation_input_tokens":…,"cache_read_input_tokens":…}`;
/// Anthropic's `input_tokens` excludes the cached share, the canonical `input` includes it.
fn push_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(
        out,
        u.input
            .saturating_sub(u.cache_read)
            .saturating_sub(u.cache_write),
    );
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(out, u.output);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_u64(out, u.cache_write);
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_u64(out, u.cache_read);
    out.push(b'}');
}

/// A tool call's arguments as a JSON object (`{}` when they are not one).
fn push_input(out: &mut Vec<u8>, arguments: &str) {
    out.extend_from_slice(arguments_object(arguments).unwrap_or("{}").as_bytes());
}

/// Writes a whole response as an Anthropic `message`.
pub fn encode_response(r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":");
    push_str(out, &stamp.answer_id(&r.id, "msg_"));
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    push_str(
        out,
        if r.model.is_empty() {
            stamp.model
        } else {
            &r.model
        },
    );
    out.extend_from_slice(b",\"content\":[");
    for (i, p) in r.parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_block(out, p);
    }
    out.extend_from_slice(b"],\"stop_reason\":");
    out.extend_from_slice(stop_reason(r.finish).as_bytes());
    out.extend_from_slice(b",\"stop_sequence\":");
    match &r.stop_sequence {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"usage\":");
    push_usage(out, &r.usage);
    out.push(b'}');
}

fn push_block(out: &mut Vec<u8>, p: &Part<'_>) {
    match p {
        Part::Text(t) => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            push_str(out, t);
        }
        Part::Thinking { text, signature } => {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            push_str(out, text);
            out.extend_from_slice(b",\"signature\":");
            push_str(out, signature.as_deref().unwrap_or_default());
        }
        Part::RedactedThinking(data) => {
            out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
            push_str(out, data);
        }
        Part::ToolCall {
            id,
            name,
            arguments,
        } => {
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            push_str(out, id);
            out.extend_from_slice(b",\"name\":");
            push_str(out, name);
            out.extend_from_slice(b",\"input\":");
            push_input(out, arguments);
        }
        // Never in an assistant answer; written as empty text so the array stays well-formed.
        Part::Image(_) | Part::ToolResult { .. } => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":\"\"");
        }
    }
    out.push(b'}');
}

// === stream ===

/// The content block open on the client's stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    None,
    Text(u32),
    Thinking(u32),
    /// Tool call `tool`'s `tool_use` block, number `block`.
    Tool {
        tool: u32,
        block: u32,
    },
}

/// A tool call that began while another tool's block was open, held until that block closes.
#[derive(Debug)]
struct Queued {
    id: String,
    name: String,
    args: String,
}

#[derive(Debug)]
struct ToolSeen {
    index: u32,
    /// `Some` until the call's block is written.
    queued: Option<Queued>,
}

/// Writes canonical stream events as Anthropic SSE events.
///
/// Anthropic streams one content block at a time, closed before the next opens; OpenAI
/// streams tool calls by index and never says when one is complete. So the first tool call
/// streams live, and a call that begins while another tool's block is open is queued with its
/// arguments and written whole when that block closes (at the end, or when text or thinking
/// follows). This is correct whether or not an upstream interleaves argument fragments of
/// parallel calls; the cost is that the second and later calls of a turn arrive in one burst.
/// Fragments for a call whose block was already closed by later text cannot be placed and are
/// dropped (no known upstream sends them).
#[derive(Debug)]
pub struct StreamEncoder {
    /// The model to report when the upstream names none.
    model: String,
    /// The message id when the upstream gives none.
    fallback_id: String,
    started: bool,
    /// `Done` or `Error` went out; nothing more is written.
    ended: bool,
    next_block: u32,
    open: Open,
    tools: Vec<ToolSeen>,
    finish: Option<Finish>,
    stop_sequence: Option<String>,
    usage: Usage,
}

fn sse(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
}

fn block_start(out: &mut Vec<u8>, index: u32) {
    sse(out, "content_block_start");
    out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
    push_u64(out, index.into());
    out.extend_from_slice(b",\"content_block\":");
}

fn block_stop(out: &mut Vec<u8>, index: u32) {
    sse(out, "content_block_stop");
    out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
    push_u64(out, index.into());
    out.extend_from_slice(b"}\n\n");
}

/// `content_block_delta` carrying `{"type":<ty>,<field>:<value>}`.
fn block_delta(out: &mut Vec<u8>, index: u32, ty: &str, field: &str, value: &str) {
    sse(out, "content_block_delta");
    out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
    push_u64(out, index.into());
    out.extend_from_slice(b",\"delta\":{\"type\":");
    push_str(out, ty);
    out.push(b',');
    push_str(out, field);
    out.push(b':');
    push_str(out, value);
    out.extend_from_slice(b"}}\n\n");
}

fn tool_block_start(out: &mut Vec<u8>, index: u32, id: &str, name: &str) {
    block_start(out, index);
    out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
    push_str(out, id);
    out.extend_from_slice(b",\"name\":");
    push_str(out, name);
    out.extend_from_slice(b",\"input\":{}}}\n\n");
}

impl StreamEncoder {
    /// `include_usage` is ignored: an Anthropic stream always reports usage.
    pub fn new(stamp: &Stamp<'_>, _include_usage: bool) -> Self {
        StreamEncoder {
            model: stamp.model.to_string(),
            fallback_id: stamp.answer_id("", "msg_").into_owned(),
            started: false,
            ended: false,
            next_block: 0,
            open: Open::None,
            tools: Vec::new(),
            finish: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }

    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        match ev {
            Event::Start { id, model, usage } => {
                if !self.started {
                    self.usage = *usage;
                    self.message_start(id, model, out);
                }
            }
            Event::Text(t) if !t.is_empty() => {
                let n = self.open_block(out, Open::Text, "{\"type\":\"text\",\"text\":\"\"}");
                block_delta(out, n, "text_delta", "text", t);
            }
            Event::Thinking(t) if !t.is_empty() => {
                let n = self.open_block(
                    out,
                    Open::Thinking,
                    "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}",
                );
                block_delta(out, n, "thinking_delta", "thinking", t);
            }
            Event::ThinkingSignature(s) => {
                if let Open::Thinking(n) = self.open {
                    block_delta(out, n, "signature_delta", "signature", s);
                }
            }
            Event::RedactedThinking(data) => {
                self.ensure_started(out);
                self.close(out);
                let n = self.new_block();
                block_start(out, n);
                out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
                push_str(out, data);
                out.extend_from_slice(b"}}\n\n");
                block_stop(out, n);
            }
            Event::ToolCall { index, id, name } => self.tool_call(*index, id, name, out),
            Event::ToolArguments { index, fragment } => self.tool_arguments(*index, fragment, out),
            Event::Finish {
                reason,
                stop_sequence,
            } => {
                self.finish = Some(*reason);
                self.stop_sequence = stop_sequence.as_deref().map(str::to_string);
            }
            Event::Usage(u) => self.usage = *u,
            Event::Error { kind, message } => {
                sse(out, "error");
                GatewayError::new(*kind, message.as_ref()).write_anthropic_body(out);
                out.extend_from_slice(b"\n\n");
                self.ended = true;
            }
            Event::Ping => out.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\"}\n\n"),
            Event::Done => self.done(out),
            Event::Text(_) | Event::Thinking(_) => {}
        }
    }

    fn message_start(&mut self, id: &str, model: &str, out: &mut Vec<u8>) {
        self.started = true;
        sse(out, "message_start");
        out.extend_from_slice(b"{\"type\":\"message_start\",\"message\":{\"id\":");
        push_str(out, if id.is_empty() { &self.fallback_id } else { id });
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_str(out, if model.is_empty() { &self.model } else { model });
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
        );
        push_usage(
            out,
            &Usage {
                output: 0,
                ..self.usage
            },
        );
        out.extend_from_slice(b"}}\n\n");
    }

    /// Content before `Start` still needs a `message_start` ahead of it.
    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.message_start("", "", out);
        }
    }

    fn new_block(&mut self) -> u32 {
        let n = self.next_block;
        self.next_block += 1;
        n
    }

    /// Makes a text or thinking block (per `kind`) the open one; returns its index.
    fn open_block(&mut self, out: &mut Vec<u8>, kind: fn(u32) -> Open, start: &str) -> u32 {
        self.ensure_started(out);
        match self.open {
            Open::Text(n) | Open::Thinking(n) if self.open == kind(n) => return n,
            _ => {}
        }
        self.close(out);
        let n = self.new_block();
        block_start(out, n);
        out.extend_from_slice(start.as_bytes());
        out.extend_from_slice(b"}\n\n");
        self.open = kind(n);
        n
    }

    /// Closes the open block; after a tool's block, writes the tool calls queued behind it.
    fn close(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Text(n) | Open::Thinking(n) => block_stop(out, n),
            Open::Tool { block, .. } => {
                block_stop(out, block);
                for i in 0..self.tools.len() {
                    if let Some(q) = self.tools[i].queued.take() {
                        let n = self.new_block();
                        tool_block_start(out, n, &q.id, &q.name);
                        if !q.args.is_empty() {
                            block_delta(out, n, "input_json_delta", "partial_json", &q.args);
                        }
                        block_stop(out, n);
                    }
                }
            }
        }
    }

    fn tool_call(&mut self, index: u32, id: &str, name: &str, out: &mut Vec<u8>) {
        if self.tools.iter().any(|t| t.index == index) {
            return;
        }
        self.ensure_started(out);
        if matches!(self.open, Open::Tool { .. }) {
            self.tools.push(ToolSeen {
                index,
                queued: Some(Queued {
                    id: id.to_string(),
                    name: name.to_string(),
                    args: String::new(),
                }),
            });
            return;
        }
        self.close(out);
        let block = self.new_block();
        tool_block_start(out, block, id, name);
        self.open = Open::Tool { tool: index, block };
        self.tools.push(ToolSeen {
            index,
            queued: None,
        });
    }

    fn tool_arguments(&mut self, index: u32, fragment: &str, out: &mut Vec<u8>) {
        if fragment.is_empty() {
            return;
        }
        if let Open::Tool { tool, block } = self.open
            && tool == index
        {
            block_delta(out, block, "input_json_delta", "partial_json", fragment);
            return;
        }
        let queued = self.tools.iter_mut().find(|t| t.index == index);
        if let Some(q) = queued.and_then(|t| t.queued.as_mut()) {
            q.args.push_str(fragment);
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.ensure_started(out);
        self.close(out);
        sse(out, "message_delta");
        out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
        out.extend_from_slice(stop_reason(self.finish).as_bytes());
        out.extend_from_slice(b",\"stop_sequence\":");
        match &self.stop_sequence {
            Some(s) => push_str(out, s),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"},\"usage\":");
        push_usage(out, &self.usage);
        out.extend_from_slice(b"}\n\n");
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        self.ended = true;
    }
}

#[cfg(test)]
mod tests;
