//! The canonical chat form every cross-protocol translation goes through: a request, a whole
//! response, and a stream event. An adapter decodes its wire format into these and encodes these
//! into its wire format, so N protocols need 2N functions rather than N² pairs.
//!
//! Strings borrow from the parsed input (`simd_json::BorrowedValue` over the request buffer)
//! wherever the wire form allows; opaque JSON the gateway never inspects (tool schemas, tool
//! inputs) is carried as a borrowed value or as JSON text. Nothing here does I/O.
//!
//! Conventions every adapter keeps:
//! - `Usage::input` counts *all* prompt tokens, cached ones included (OpenAI's `prompt_tokens`);
//!   `cache_read`/`cache_write` say how many of them were read from / written to a prompt cache.
//! - Tool calls are numbered 0, 1, 2… in the order they appear in one assistant turn; a stream's
//!   tool-call events carry that number, never a wire-level block index.
//! - A field the source had that the target cannot express is named in `dropped` by the encoder
//!   that dropped it (or in `ChatRequest::ignored` by the decoder, for fields the canonical form
//!   has no place for), so the pipeline can log it and tell the client in a header.

use std::borrow::Cow;

use simd_json::BorrowedValue;

use super::Usage;

/// Most tool calls one answer may carry. Decoders stop tracking calls past this, and a stream
/// translator ends the stream with an error once it sees more (a hostile upstream could
/// otherwise make every fragment's lookup scan an ever-growing list).
pub const MAX_TOOL_CALLS: usize = 128;
/// Most bytes of tool-call arguments one translated answer may carry (arguments of calls
/// queued behind an open block are held until it closes).
pub const MAX_TOOL_ARGUMENT_BYTES: usize = 2 << 20;

/// Opaque JSON carried through untouched (a tool's parameter schema, `metadata`, …).
pub type Json<'a> = &'a BorrowedValue<'a>;

/// One chat request, whatever protocol it arrived in.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest<'a> {
    /// The model as the client sent it (the alias); encoders write the target's model instead.
    pub model: Cow<'a, str>,
    /// System prompt blocks, in order (OpenAI `system`/`developer` messages, Anthropic `system`).
    pub system: Vec<Cow<'a, str>>,
    pub messages: Vec<Message<'a>>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<u64>,
    pub stop: Vec<Cow<'a, str>>,
    pub stream: bool,
    /// The client asked for token usage in the stream (OpenAI `stream_options.include_usage`;
    /// always true for Anthropic ingress, whose stream always carries usage).
    pub include_usage: bool,
    pub tools: Vec<Tool<'a>>,
    pub tool_choice: Option<ToolChoice<'a>>,
    /// `Some(false)` when the client forbade parallel tool calls.
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<ResponseFormat<'a>>,
    /// End-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<Cow<'a, str>>,
    pub reasoning: Option<Reasoning>,
    /// Number of choices asked for (OpenAI `n`); only 1 translates.
    pub n: Option<u64>,
    pub seed: Option<i64>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    /// Top-level request fields the decoder recognised but cannot carry (e.g. `logit_bias`),
    /// reported as dropped with the encoder's own.
    pub ignored: Vec<Cow<'a, str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn. Tool results are parts of a user turn (Anthropic's shape); the OpenAI adapter
/// turns them into `role: "tool"` messages and back.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub role: Role,
    pub parts: Vec<Part<'a>>,
}

#[derive(Debug, Clone)]
pub enum Part<'a> {
    Text(Cow<'a, str>),
    Image(Image<'a>),
    /// A call the assistant made. `arguments` is JSON text (an object).
    ToolCall {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        arguments: Cow<'a, str>,
    },
    /// The result of a tool call, sent back by the user side.
    ToolResult {
        id: Cow<'a, str>,
        content: Vec<Part<'a>>,
        is_error: bool,
    },
    /// Extended thinking; `signature` must go back to Anthropic byte-exact.
    Thinking {
        text: Cow<'a, str>,
        signature: Option<Cow<'a, str>>,
    },
    /// Thinking the provider encrypted; opaque, returned as is.
    RedactedThinking(Cow<'a, str>),
}

#[derive(Debug, Clone)]
pub enum Image<'a> {
    Url(Cow<'a, str>),
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Tool<'a> {
    pub name: Cow<'a, str>,
    pub description: Option<Cow<'a, str>>,
    /// JSON Schema of the input; `None` means "any object".
    pub parameters: Option<Json<'a>>,
    /// `parameters` is Google's OpenAPI subset (Gemini's `parameters`: `"type":"OBJECT"`,
    /// `nullable`), written out as JSON Schema.
    pub openapi: bool,
}

impl Tool<'_> {
    /// Writes the input schema as JSON Schema; a tool without one takes any object.
    pub fn write_schema(&self, out: &mut Vec<u8>) {
        match &self.parameters {
            Some(schema) if self.openapi => write_openapi_schema(schema, out),
            Some(schema) => {
                let _ = simd_json::prelude::Writable::write(*schema, out);
            }
            None => out.extend_from_slice(b"{\"type\":\"object\",\"properties\":{}}"),
        }
    }
}

/// An OpenAPI schema object (Google's subset) as JSON Schema: type names in lower case,
/// `nullable: true` as a `"null"` type beside the other, Google's `propertyOrdering` left out;
/// everything else as it is, at every depth.
fn write_openapi_schema(v: &BorrowedValue<'_>, out: &mut Vec<u8>) {
    use simd_json::prelude::*;
    match v {
        BorrowedValue::Object(o) => {
            let nullable = o.get("nullable").and_then(|n| n.as_bool()) == Some(true);
            out.push(b'{');
            let mut first = true;
            for (k, v) in o.iter() {
                if k == "nullable" || k == "propertyOrdering" {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                crate::json::push_str(out, k);
                out.push(b':');
                match (k.as_ref(), v.as_str()) {
                    ("type", Some(t)) => {
                        let t = t.to_ascii_lowercase();
                        if nullable {
                            out.push(b'[');
                            crate::json::push_str(out, &t);
                            out.extend_from_slice(b",\"null\"]");
                        } else {
                            crate::json::push_str(out, &t);
                        }
                    }
                    _ => write_openapi_schema(v, out),
                }
            }
            out.push(b'}');
        }
        BorrowedValue::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_openapi_schema(v, out);
            }
            out.push(b']');
        }
        other => {
            let _ = Writable::write(other, out);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice<'a> {
    Auto,
    /// The model must call some tool.
    Required,
    None,
    Tool(Cow<'a, str>),
}

#[derive(Debug, Clone)]
pub enum ResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema {
        name: Cow<'a, str>,
        schema: Option<Json<'a>>,
        /// OpenAI's `strict`: the output must match the schema exactly.
        strict: Option<bool>,
    },
}

/// How much the model may think before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reasoning {
    /// OpenAI `reasoning_effort`.
    Effort(Effort),
    /// Anthropic `thinking.budget_tokens`.
    Budget(u64),
    /// Thinking explicitly off.
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Minimal,
    Low,
    Medium,
    High,
}

impl Effort {
    /// The thinking budget an effort maps to when the upstream wants tokens.
    pub fn budget(self) -> u64 {
        match self {
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 24576,
        }
    }

    /// The effort a token budget maps to when the upstream wants an effort.
    pub fn from_budget(tokens: u64) -> Effort {
        match tokens {
            0..=1024 => Effort::Minimal,
            1025..=4096 => Effort::Low,
            4097..=16384 => Effort::Medium,
            _ => Effort::High,
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Natural end (OpenAI `stop`, Anthropic `end_turn`).
    EndTurn,
    /// A stop sequence matched (OpenAI `stop`, Anthropic `stop_sequence`).
    StopSequence,
    /// `max_tokens` reached (`length` / `max_tokens`).
    Length,
    /// The model called tools (`tool_calls` / `tool_use`).
    ToolCalls,
    /// Refused or filtered (`content_filter` / `refusal`).
    ContentFilter,
    /// Anthropic `pause_turn`: a long turn paused; OpenAI has no equivalent (maps to `stop`).
    Paused,
}

/// One whole (non-streamed) response.
#[derive(Debug, Clone)]
pub struct ChatResponse<'a> {
    pub id: Cow<'a, str>,
    /// The model the upstream says answered.
    pub model: Cow<'a, str>,
    /// Unix seconds; encoders that need it and lack it use the value the pipeline passes.
    pub created: Option<u64>,
    /// Assistant output in order: thinking, text, tool calls.
    pub parts: Vec<Part<'a>>,
    pub finish: Option<Finish>,
    /// The stop sequence that matched, when the upstream says.
    pub stop_sequence: Option<Cow<'a, str>>,
    pub usage: Usage,
}

/// One stream event. A decoder may emit several per wire event, or none.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// The response began (OpenAI: the first chunk; Anthropic: `message_start`). `usage` holds
    /// what is known so far (Anthropic reports input tokens here).
    Start {
        id: Cow<'a, str>,
        model: Cow<'a, str>,
        usage: Usage,
    },
    Text(Cow<'a, str>),
    Thinking(Cow<'a, str>),
    ThinkingSignature(Cow<'a, str>),
    RedactedThinking(Cow<'a, str>),
    /// Tool call number `index` begins.
    ToolCall {
        index: u32,
        id: Cow<'a, str>,
        name: Cow<'a, str>,
    },
    /// A fragment of tool call `index`'s JSON arguments.
    ToolArguments {
        index: u32,
        fragment: Cow<'a, str>,
    },
    Finish {
        reason: Finish,
        stop_sequence: Option<Cow<'a, str>>,
    },
    /// Cumulative usage (replaces what an earlier `Start`/`Usage` said).
    Usage(Usage),
    /// The upstream reported an error mid-stream.
    Error {
        kind: crate::error::Kind,
        message: Cow<'a, str>,
    },
    /// Keep-alive with no content (Anthropic `ping`); encoders may forward or drop it.
    Ping,
    /// The end of the stream (OpenAI `[DONE]`, Anthropic `message_stop`).
    Done,
}

/// Values the pipeline fixes for an encode, so output is deterministic in tests.
#[derive(Debug, Clone, Copy)]
pub struct Stamp<'s> {
    /// The upstream model name (request encoders) or the name to report (response encoders).
    pub model: &'s str,
    /// Unix seconds for OpenAI's `created`.
    pub created: u64,
    /// `max_tokens` to send when the target requires one and the client gave none.
    pub default_max_tokens: u64,
    /// The gateway's request id: answers whose upstream gives no id of its own (Bedrock's) are
    /// named after it, so no two answers share an id.
    pub id: &'s str,
}

impl Stamp<'_> {
    /// The answer's id: the upstream's, or `prefix` and the gateway's request id when the
    /// upstream gave none.
    pub fn answer_id<'a>(&self, upstream: &'a str, prefix: &str) -> Cow<'a, str> {
        if !upstream.is_empty() {
            return Cow::Borrowed(upstream);
        }
        let id = if self.id.is_empty() {
            "shardgate"
        } else {
            self.id
        };
        Cow::Owned(format!("{prefix}{id}"))
    }
}

/// Adds a name to [`ChatRequest::ignored`] unless it is there already (each is reported once).
pub fn note_once<'a>(ignored: &mut Vec<Cow<'a, str>>, name: Cow<'a, str>) {
    if !ignored.contains(&name) {
        ignored.push(name);
    }
}

/// Adds a name to an encoder's dropped list unless it is there already.
pub fn note_dropped(dropped: &mut Vec<String>, name: &str) {
    if !dropped.iter().any(|d| d == name) {
        dropped.push(name.to_owned());
    }
}

/// A tool call's arguments as a JSON object, which Anthropic's `input` must be: the text itself
/// when it is one, `{}` when it is empty, `None` when it is something else (broken JSON from a
/// model must not break the next parser).
pub fn arguments_object(arguments: &str) -> Option<&str> {
    let text = arguments.trim();
    if text.is_empty() {
        return Some("{}");
    }
    use simd_json::prelude::*;
    let mut copy = text.as_bytes().to_vec();
    simd_json::to_borrowed_value(&mut copy)
        .is_ok_and(|v| v.is_object())
        .then_some(text)
}

/// An embeddings request (OpenAI `/v1/embeddings`), the form other protocols' encoders read.
#[derive(Debug, Clone, Default)]
pub struct EmbedRequest<'a> {
    /// The model as the client sent it (the alias).
    pub model: Cow<'a, str>,
    /// The texts to embed, in order (a single string is one input).
    pub input: Vec<Cow<'a, str>>,
    /// Output dimensions asked for (OpenAI `dimensions`).
    pub dimensions: Option<u64>,
    /// The client wants vectors as base64 of little-endian f32 (`encoding_format: base64`).
    pub base64: bool,
    pub user: Option<Cow<'a, str>>,
}

/// An embeddings answer: one vector per input, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedResponse {
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens (0 when the provider does not say).
    pub input_tokens: u64,
}
