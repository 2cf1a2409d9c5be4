//! The Anthropic Messages wire as a provider expects it: canonical requests become Messages
//! bodies; Messages responses, SSE events and error bodies become canonical responses, events
//! and gateway error kinds. Pure functions, no I/O.
//!
//! The encoder keeps the invariants the Messages API rejects requests without: roles alternate
//! (consecutive same-role turns merge), tool results lead their user turn, thinking blocks lead
//! their assistant turn and carry a signature, `max_tokens` exceeds the thinking budget, and
//! `temperature`/`top_p`/`top_k` never travel with extended thinking. Whatever cannot be
//! expressed is named in `dropped`, once per name.

use std::borrow::Cow;

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use crate::error::{GatewayError, Kind, upstream_message};
use crate::json::{push_escaped, push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Event, Finish, Image, Json, MAX_TOOL_CALLS, Message, Part,
    Reasoning, ResponseFormat, Role, Stamp, ToolChoice, arguments_object, note_dropped,
};

const ARGS_NOT_OBJECT: &str = "tool_calls[].function.arguments (not a JSON object)";
const THINKING_UNSIGNED: &str = "thinking (no signature)";
const TEMPERATURE_CLAMPED: &str = "temperature (clamped to 1)";
/// Anthropic's `temperature` ceiling (OpenAI's is 2).
const MAX_TEMPERATURE: f64 = 1.0;

// === impl encode_request ===

/// Writes the Messages body for `r`; `model` is `stamp.model`.
pub fn encode_request(
    r: &ChatRequest<'_>,
    stamp: &Stamp<'_>,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    let budget = match r.reasoning {
        Some(Reasoning::Effort(e)) => Some(e.budget()),
        Some(Reasoning::Budget(b)) => Some(b),
        Some(Reasoning::Disabled) | None => None,
    };
    let mut max_tokens = r.max_tokens.unwrap_or(stamp.default_max_tokens);
    if let Some(b) = budget.filter(|&b| max_tokens <= b) {
        // The budget is carved out of max_tokens; keep the answer room the client asked for.
        max_tokens = b.saturating_add(max_tokens);
    }
    out.extend_from_slice(b"{\"model\":");
    push_str(out, stamp.model);
    out.extend_from_slice(b",\"max_tokens\":");
    push_u64(out, max_tokens);
    write_system(r, out);
    out.extend_from_slice(b",\"messages\":");
    write_messages(&r.messages, out, dropped);
    if !r.stop.is_empty() {
        out.extend_from_slice(b",\"stop_sequences\":");
        write_strings(&r.stop, out);
    }
    write_sampling(r, budget.is_some(), out, dropped);
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    write_tools(r, out);
    if let Some(user) = &r.user {
        out.extend_from_slice(b",\"metadata\":{\"user_id\":");
        push_str(out, user);
        out.push(b'}');
    }
    match (r.reasoning, budget) {
        (Some(Reasoning::Disabled), _) => {
            out.extend_from_slice(b",\"thinking\":{\"type\":\"disabled\"}");
        }
        (_, Some(b)) => {
            out.extend_from_slice(b",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":");
            push_u64(out, b);
            out.push(b'}');
        }
        _ => {}
    }
    drop_untranslatable(r, dropped);
    out.push(b'}');
}

fn write_strings(list: &[Cow<'_, str>], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, s);
    }
    out.push(b']');
}

/// One string: the system blocks, then (Anthropic having no JSON mode) the JSON instruction.
fn write_system(r: &ChatRequest<'_>, out: &mut Vec<u8>) {
    let instruction = r.response_format.as_ref().and_then(json_instruction);
    let mut blocks = r
        .system
        .iter()
        .map(|s| s.as_ref())
        .chain(instruction.as_deref())
        .filter(|s| !s.is_empty())
        .peekable();
    if blocks.peek().is_none() {
        return;
    }
    out.extend_from_slice(b",\"system\":\"");
    for (i, s) in blocks.enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n\\n");
        }
        push_escaped(out, s.as_bytes());
    }
    out.push(b'"');
}

fn json_instruction(f: &ResponseFormat<'_>) -> Option<String> {
    const TAIL: &str = "Do not add any other text, and do not wrap it in a code block.";
    match f {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(format!(
            "Respond with only a single valid JSON object. {TAIL}"
        )),
        ResponseFormat::JsonSchema { name, schema, .. } => {
            let mut s = format!(
                "Respond with only a single valid JSON object that conforms to the JSON schema \
                 \"{name}\". {TAIL}"
            );
            if let Some(schema) = schema {
                s.push_str("\nThe schema:\n");
                s.push_str(&schema.encode());
            }
            Some(s)
        }
    }
}

/// An Anthropic turn: the blocks that must lead it (tool results, thinking), then the rest.
struct Turn<'r, 'a> {
    role: Role,
    lead: Vec<&'r Part<'a>>,
    rest: Vec<&'r Part<'a>>,
}

/// Canonical messages as alternating turns; parts Anthropic would reject are left out.
fn turns<'r, 'a>(messages: &'r [Message<'a>], dropped: &mut Vec<String>) -> Vec<Turn<'r, 'a>> {
    let mut turns: Vec<Turn<'r, 'a>> = Vec::with_capacity(messages.len());
    for m in messages {
        for p in &m.parts {
            match p {
                Part::Text(t) if t.is_empty() => continue,
                Part::Thinking {
                    signature: None, ..
                } => {
                    note_dropped(dropped, THINKING_UNSIGNED);
                    continue;
                }
                _ => {}
            }
            if turns.last().is_none_or(|t| t.role != m.role) {
                turns.push(Turn {
                    role: m.role,
                    lead: Vec::new(),
                    rest: Vec::new(),
                });
            }
            let Some(turn) = turns.last_mut() else {
                continue;
            };
            let leads = match m.role {
                Role::User => matches!(p, Part::ToolResult { .. }),
                Role::Assistant => matches!(p, Part::Thinking { .. } | Part::RedactedThinking(_)),
            };
            if leads {
                turn.lead.push(p);
            } else {
                turn.rest.push(p);
            }
        }
    }
    turns
}

fn write_messages(messages: &[Message<'_>], out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    out.push(b'[');
    for (i, turn) in turns(messages, dropped).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(match turn.role {
            Role::User => b"{\"role\":\"user\",\"content\":[",
            Role::Assistant => b"{\"role\":\"assistant\",\"content\":[",
        });
        for (j, p) in turn.lead.iter().chain(&turn.rest).enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_block(p, out, dropped);
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
}

fn write_block(p: &Part<'_>, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    match p {
        Part::Text(t) => write_text(t, out),
        Part::Image(img) => write_image(img, out),
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
            write_tool_input(arguments, out, dropped);
            out.push(b'}');
        }
        Part::ToolResult {
            id,
            content,
            is_error,
        } => write_tool_result(id, content, *is_error, out),
        Part::Thinking { text, signature } => {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            push_str(out, text);
            out.extend_from_slice(b",\"signature\":");
            push_str(out, signature.as_deref().unwrap_or_default());
            out.push(b'}');
        }
        Part::RedactedThinking(data) => {
            out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
            push_str(out, data);
            out.push(b'}');
        }
    }
}

fn write_text(t: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    push_str(out, t);
    out.push(b'}');
}

fn write_image(img: &Image<'_>, out: &mut Vec<u8>) {
    match img {
        Image::Url(url) => {
            out.extend_from_slice(b"{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
            push_str(out, url);
        }
        Image::Base64 { media_type, data } => {
            out.extend_from_slice(
                b"{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":",
            );
            push_str(out, media_type);
            out.extend_from_slice(b",\"data\":");
            push_str(out, data);
        }
    }
    out.extend_from_slice(b"}}");
}

/// `input` must be an object: the client's argument text goes as is when it is one.
fn write_tool_input(arguments: &str, out: &mut Vec<u8>, dropped: &mut Vec<String>) {
    match arguments_object(arguments) {
        Some(text) => out.extend_from_slice(text.as_bytes()),
        None => {
            out.extend_from_slice(b"{}");
            note_dropped(dropped, ARGS_NOT_OBJECT);
        }
    }
}

fn write_tool_result(id: &str, content: &[Part<'_>], is_error: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
    push_str(out, id);
    // Anthropic rejects empty text blocks; a result with nothing to say has no `content`.
    let mut blocks = content
        .iter()
        .filter(|p| match p {
            Part::Text(t) => !t.is_empty(),
            Part::Image(_) => true,
            _ => false,
        })
        .peekable();
    if blocks.peek().is_some() {
        out.extend_from_slice(b",\"content\":[");
        for (i, p) in blocks.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match p {
                Part::Image(img) => write_image(img, out),
                Part::Text(t) => write_text(t, out),
                _ => {}
            }
        }
        out.push(b']');
    }
    if is_error {
        out.extend_from_slice(b",\"is_error\":true");
    }
    out.push(b'}');
}

fn write_sampling(
    r: &ChatRequest<'_>,
    thinking: bool,
    out: &mut Vec<u8>,
    dropped: &mut Vec<String>,
) {
    if thinking {
        // Extended thinking fixes the sampling parameters; the API rejects any of them.
        let given = [
            ("temperature", r.temperature.is_some()),
            ("top_p", r.top_p.is_some()),
            ("top_k", r.top_k.is_some()),
        ];
        for (name, _) in given.iter().filter(|(_, set)| *set) {
            note_dropped(dropped, name);
        }
        return;
    }
    if let Some(t) = r.temperature {
        let t = if t > MAX_TEMPERATURE {
            note_dropped(dropped, TEMPERATURE_CLAMPED);
            MAX_TEMPERATURE
        } else {
            t
        };
        out.extend_from_slice(b",\"temperature\":");
        crate::json::push_f64(out, t);
    }
    if let Some(p) = r.top_p {
        out.extend_from_slice(b",\"top_p\":");
        crate::json::push_f64(out, p);
    }
    if let Some(k) = r.top_k {
        out.extend_from_slice(b",\"top_k\":");
        push_u64(out, k);
    }
}

fn write_tools(r: &ChatRequest<'_>, out: &mut Vec<u8>) {
    // Without tools a tool choice means nothing; Anthropic would reject it.
    if r.tools.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"tools\":[");
    for (i, t) in r.tools.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_str(out, &t.name);
        if let Some(d) = &t.description {
            out.extend_from_slice(b",\"description\":");
            push_str(out, d);
        }
        out.extend_from_slice(b",\"input_schema\":");
        t.write_schema(out);
        out.push(b'}');
    }
    out.push(b']');
    let serial = r.parallel_tool_calls == Some(false);
    let choice = match &r.tool_choice {
        Some(c) => c,
        None if serial => &ToolChoice::Auto,
        None => return,
    };
    out.extend_from_slice(b",\"tool_choice\":{\"type\":");
    match choice {
        ToolChoice::Auto => out.extend_from_slice(b"\"auto\""),
        ToolChoice::Required => out.extend_from_slice(b"\"any\""),
        ToolChoice::None => out.extend_from_slice(b"\"none\""),
        ToolChoice::Tool(name) => {
            out.extend_from_slice(b"\"tool\",\"name\":");
            push_str(out, name);
        }
    }
    // `{"type":"none"}` takes no options: no tool call is as serial as it gets.
    if serial && *choice != ToolChoice::None {
        out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
    }
    out.push(b'}');
}

/// Request fields the Messages API has no place for. Zero penalties are the default and
/// change nothing, so they are not reported.
fn drop_untranslatable(r: &ChatRequest<'_>, dropped: &mut Vec<String>) {
    if r.n.is_some_and(|n| n > 1) {
        note_dropped(dropped, "n");
    }
    if r.seed.is_some() {
        note_dropped(dropped, "seed");
    }
    if r.presence_penalty.is_some_and(|p| p != 0.0) {
        note_dropped(dropped, "presence_penalty");
    }
    if r.frequency_penalty.is_some_and(|p| p != 0.0) {
        note_dropped(dropped, "frequency_penalty");
    }
}

// === impl decode_response ===

fn protocol(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::UpstreamProtocol, message)
}

fn str_at<'a>(v: Json<'a>, key: &str) -> Option<&'a str> {
    v.get(key).and_then(|x| x.as_str())
}

/// Reads a whole Messages response.
pub fn decode_response<'a>(v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
    let content = v
        .get("content")
        .and_then(|c| c.as_array())
        .ok_or_else(|| protocol("anthropic: response has no content array"))?;
    let mut parts = Vec::with_capacity(content.len());
    for (i, block) in content.iter().enumerate() {
        if let Some(p) = decode_block(block, i)? {
            parts.push(p);
        }
    }
    Ok(ChatResponse {
        id: Cow::Borrowed(str_at(v, "id").unwrap_or_default()),
        model: Cow::Borrowed(str_at(v, "model").unwrap_or_default()),
        created: None,
        parts,
        finish: str_at(v, "stop_reason").and_then(finish_of),
        stop_sequence: str_at(v, "stop_sequence").map(Cow::Borrowed),
        usage: usage_of(v.get("usage"), None),
    })
}

/// One content block; `None` for block types with no canonical form (server tools, …).
fn decode_block<'a>(b: Json<'a>, i: usize) -> Result<Option<Part<'a>>, GatewayError> {
    let field = |key: &str| {
        str_at(b, key)
            .map(Cow::Borrowed)
            .ok_or_else(|| protocol(format!("anthropic: content[{i}].{key}: expected a string")))
    };
    let part = match str_at(b, "type") {
        Some("text") => Part::Text(field("text")?),
        Some("thinking") => Part::Thinking {
            text: field("thinking")?,
            signature: str_at(b, "signature").map(Cow::Borrowed),
        },
        Some("redacted_thinking") => Part::RedactedThinking(field("data")?),
        Some("tool_use") => Part::ToolCall {
            id: field("id")?,
            name: field("name")?,
            arguments: Cow::Owned(b.get("input").map_or_else(|| "{}".into(), |x| x.encode())),
        },
        Some(_) => return Ok(None),
        None => return Err(protocol(format!("anthropic: content[{i}] has no type"))),
    };
    Ok(Some(part))
}

fn finish_of(reason: &str) -> Option<Finish> {
    Some(match reason {
        "end_turn" => Finish::EndTurn,
        "max_tokens" | "model_context_window_exceeded" => Finish::Length,
        "stop_sequence" => Finish::StopSequence,
        "tool_use" => Finish::ToolCalls,
        "refusal" => Finish::ContentFilter,
        "pause_turn" => Finish::Paused,
        _ => return None,
    })
}

/// Prompt token counts as Anthropic splits them: uncached, read from cache, written to it.
/// `input_tokens` is only the uncached part, so [`Prompt::usage`] adds the other two back.
#[derive(Debug, Default, Clone, Copy)]
struct Prompt {
    fresh: u64,
    cache_read: u64,
    cache_write: u64,
    output: u64,
}

impl Prompt {
    /// Reads `usage`, keeping `base`'s value for every count it does not carry.
    fn read(u: Option<&BorrowedValue<'_>>, base: Prompt) -> Prompt {
        let n = |key: &str, old: u64| {
            u.and_then(|u| u.get(key))
                .and_then(|x| x.as_u64())
                .unwrap_or(old)
        };
        Prompt {
            fresh: n("input_tokens", base.fresh),
            cache_read: n("cache_read_input_tokens", base.cache_read),
            cache_write: n("cache_creation_input_tokens", base.cache_write),
            output: n("output_tokens", base.output),
        }
    }

    fn usage(self) -> Usage {
        Usage {
            input: self
                .fresh
                .saturating_add(self.cache_read)
                .saturating_add(self.cache_write),
            output: self.output,
            cache_read: self.cache_read,
            cache_write: self.cache_write,
            // Thinking tokens are in `output_tokens`; Anthropic reports no separate count.
            reasoning: 0,
        }
    }
}

fn usage_of(u: Option<&BorrowedValue<'_>>, base: Option<Prompt>) -> Usage {
    Prompt::read(u, base.unwrap_or_default()).usage()
}

// === impl StreamDecoder ===

/// Reads a Messages SSE stream one event's data at a time.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Usage as `message_start` reported it; `message_delta` updates what it carries.
    prompt: Prompt,
    /// (content block index, tool ordinal) for every tool_use block seen so far.
    tools: Vec<(u64, u32)>,
}

impl StreamDecoder {
    /// Decodes one event's data (parsed in place) and emits its canonical events.
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("anthropic: stream event is not valid JSON: {e}")))?;
        match str_at(&v, "type").unwrap_or_default() {
            "message_start" => self.message_start(&v, emit),
            "content_block_start" => self.block_start(&v, emit),
            "content_block_delta" => self.block_delta(&v, emit),
            "message_delta" => self.message_delta(&v, emit),
            "message_stop" => emit(Event::Done),
            "ping" => emit(Event::Ping),
            "error" => emit(stream_error(&v)),
            _ => {}
        }
        Ok(())
    }

    fn message_start(&mut self, v: &BorrowedValue<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let m = v.get("message");
        self.prompt = Prompt::read(m.and_then(|m| m.get("usage")), Prompt::default());
        self.tools.clear();
        emit(Event::Start {
            id: Cow::Borrowed(m.and_then(|m| str_at(m, "id")).unwrap_or_default()),
            model: Cow::Borrowed(m.and_then(|m| str_at(m, "model")).unwrap_or_default()),
            usage: self.prompt.usage(),
        });
    }

    fn block_start(&mut self, v: &BorrowedValue<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let Some(block) = v.get("content_block") else {
            return;
        };
        let text = |key: &str| str_at(block, key).unwrap_or_default();
        match str_at(block, "type") {
            Some("text") if !text("text").is_empty() => emit(Event::Text(text("text").into())),
            Some("thinking") if !text("thinking").is_empty() => {
                emit(Event::Thinking(text("thinking").into()))
            }
            Some("redacted_thinking") => emit(Event::RedactedThinking(text("data").into())),
            Some("tool_use") if self.tools.len() <= MAX_TOOL_CALLS => {
                let index = self.tools.len() as u32;
                let block_index = v.get("index").and_then(|i| i.as_u64()).unwrap_or(u64::MAX);
                self.tools.push((block_index, index));
                emit(Event::ToolCall {
                    index,
                    id: text("id").into(),
                    name: text("name").into(),
                });
            }
            _ => {}
        }
    }

    fn block_delta(&mut self, v: &BorrowedValue<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let Some(delta) = v.get("delta") else {
            return;
        };
        let text = |key: &str| Cow::Borrowed(str_at(delta, key).unwrap_or_default());
        match str_at(delta, "type") {
            Some("text_delta") => emit(Event::Text(text("text"))),
            Some("thinking_delta") => emit(Event::Thinking(text("thinking"))),
            Some("signature_delta") => emit(Event::ThinkingSignature(text("signature"))),
            Some("input_json_delta") => {
                let fragment = text("partial_json");
                let block = v.get("index").and_then(|i| i.as_u64());
                let tool = self.tools.iter().find(|(b, _)| Some(*b) == block);
                if let (Some((_, index)), false) = (tool, fragment.is_empty()) {
                    emit(Event::ToolArguments {
                        index: *index,
                        fragment,
                    });
                }
            }
            _ => {}
        }
    }

    fn message_delta(&mut self, v: &BorrowedValue<'_>, emit: &mut dyn FnMut(Event<'_>)) {
        let delta = v.get("delta");
        if let Some(reason) = delta
            .and_then(|d| str_at(d, "stop_reason"))
            .and_then(finish_of)
        {
            emit(Event::Finish {
                reason,
                stop_sequence: delta
                    .and_then(|d| str_at(d, "stop_sequence"))
                    .map(Cow::Borrowed),
            });
        }
        // Delta usage is cumulative; newer API versions repeat the input counts here.
        self.prompt = Prompt::read(v.get("usage"), self.prompt);
        emit(Event::Usage(self.prompt.usage()));
    }
}

fn stream_error<'a>(v: &'a BorrowedValue<'a>) -> Event<'a> {
    let e = v.get("error");
    let kind = e
        .and_then(|e| str_at(e, "type"))
        .map_or(Kind::UpstreamServer, kind_of_type);
    Event::Error {
        kind,
        message: Cow::Owned(upstream_message(
            "anthropic",
            e.and_then(|e| str_at(e, "message")),
            None,
        )),
    }
}

/// The kind an Anthropic `error.type` names, for errors that come without an HTTP status.
fn kind_of_type(t: &str) -> Kind {
    match t {
        "rate_limit_error" => Kind::UpstreamRateLimited,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            Kind::UpstreamBadRequest
        }
        "authentication_error" | "permission_error" => Kind::UpstreamAuth,
        "timeout_error" => Kind::UpstreamTimeout,
        _ => Kind::UpstreamServer,
    }
}

// === impl classify ===

/// Classifies a non-2xx Messages answer; `retry_after_s` is left to the caller's headers.
pub fn classify(status: u16, body: &[u8]) -> GatewayError {
    let mut copy = body.to_vec();
    let parsed = simd_json::to_borrowed_value(&mut copy).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let message = error.and_then(|e| str_at(e, "message"));
    let kind = match status {
        400 if message.is_some_and(too_long) => Kind::UpstreamContextWindow,
        400..=599 => Kind::from_upstream_status(status),
        _ => error
            .and_then(|e| str_at(e, "type"))
            .map_or(Kind::UpstreamProtocol, kind_of_type),
    };
    GatewayError::new(kind, upstream_message("anthropic", message, Some(status)))
}

/// Whether a 400's message says the prompt does not fit the model's context window
/// ("prompt is too long: 210000 tokens > 200000 maximum", "… exceed context limit: …").
fn too_long(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "prompt is too long",
        "context window",
        "context limit",
        "context length",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

#[cfg(test)]
mod tests;
