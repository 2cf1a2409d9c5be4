//! Byte builders for every response the mock sends: response heads, OpenAI and Anthropic JSON
//! bodies, SSE events and error bodies. They append to a caller-owned `Vec<u8>` that is reused
//! from request to request, so a response costs no allocation once the buffers are warm. What
//! is said comes from a [`Reply`]; the tool-call and thinking parts are built in `tools.rs`.

use super::directives::StopReason;
use super::reply::{Block, Reply, Step};
use super::tools;

/// What every body of one response shares.
pub(crate) struct Meta {
    pub id: u64,
    pub created: u64,
    /// The model name as a quoted, escaped JSON string.
    pub model: Vec<u8>,
    /// The body's own estimate: the prompt tokens that were not read from the cache.
    pub prompt_tokens: u64,
    /// Prompt tokens read from the cache (`cached_tokens`), reported beside `prompt_tokens`.
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    /// The part of `completion_tokens` spent reasoning.
    pub reasoning_tokens: u64,
    /// The latency the answer reports where a protocol has a field for it (Bedrock's
    /// `metrics.latencyMs`): `latency_ms`.
    pub latency_ms: u64,
}

impl Meta {
    pub fn new(id: u64, model: &str, body_len: usize, reply: &Reply) -> Meta {
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut m = Vec::with_capacity(model.len() + 2);
        json_str(&mut m, model);
        Meta {
            id,
            created,
            model: m,
            prompt_tokens: (body_len as u64 / 4).max(1),
            cached_tokens: 0,
            completion_tokens: reply.output_tokens(),
            reasoning_tokens: reply.reasoning_tokens(),
            latency_ms: 0,
        }
    }

    /// `cached_tokens` and `reasoning_tokens`: cache reads on top of the prompt estimate, and a
    /// reasoning count in place of the answer's own, the completion count moving with it (the
    /// reasoning stays a part of the completion, as both APIs count it).
    pub fn report(&mut self, cached: u64, reasoning: Option<u64>) {
        self.cached_tokens = cached;
        if let Some(r) = reasoning {
            let answer = self.completion_tokens.saturating_sub(self.reasoning_tokens);
            self.completion_tokens = answer.saturating_add(r);
            self.reasoning_tokens = r;
        }
    }

    /// `usage_huge`: prompt and completion counts of `u64::MAX`, so that a gateway adding them
    /// up has to saturate (the mock's own totals do).
    pub fn huge_usage(&mut self) {
        self.prompt_tokens = u64::MAX;
        self.completion_tokens = u64::MAX;
    }
}

pub(crate) fn num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// The reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Overloaded",
        _ => "Mock Status",
    }
}

/// Options of a response head.
pub(crate) struct Head<'a> {
    pub status: u16,
    pub content_type: &'a str,
    /// `None` means chunked transfer encoding.
    pub content_length: Option<usize>,
    pub close: bool,
    pub retry_after: Option<&'a str>,
    /// One more header (Bedrock's `x-amzn-errortype`).
    pub extra: Option<(&'a str, &'a str)>,
}

pub(crate) fn head(out: &mut Vec<u8>, h: &Head) {
    out.extend_from_slice(b"HTTP/1.1 ");
    num(out, h.status as u64);
    out.push(b' ');
    out.extend_from_slice(reason(h.status).as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: ");
    out.extend_from_slice(h.content_type.as_bytes());
    match h.content_length {
        Some(n) => {
            out.extend_from_slice(b"\r\ncontent-length: ");
            num(out, n as u64);
        }
        None => out.extend_from_slice(b"\r\ncache-control: no-cache\r\ntransfer-encoding: chunked"),
    }
    if let Some(r) = h.retry_after {
        out.extend_from_slice(b"\r\nretry-after: ");
        out.extend_from_slice(r.as_bytes());
    }
    if let Some((name, value)) = h.extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    if h.close {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
}

/// The API family, which decides the shape of bodies and errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Api {
    Chat,
    Completion,
    Messages,
    /// Cohere v2 `POST /v2/chat`.
    Cohere,
    /// Gemini `generateContent` (Google AI and Vertex AI).
    Gemini,
    /// Bedrock `converse` / `converse-stream`.
    Bedrock,
    /// OpenAI `POST /v1/responses`.
    Responses,
}

impl Api {
    /// The content type of a streamed answer.
    pub fn stream_type(self) -> &'static str {
        match self {
            Api::Bedrock => "application/vnd.amazon.eventstream",
            _ => "text/event-stream",
        }
    }
}

/// Appends the text answer `"tok0 tok1 ... "` of `reply.chunks` pieces as a JSON string, then
/// its `pad` filler (`huge_body`).
pub(crate) fn text(out: &mut Vec<u8>, reply: &Reply) {
    out.push(b'"');
    for i in 0..reply.chunks {
        out.extend_from_slice(b"tok");
        num(out, i);
        out.push(b' ');
    }
    out.resize(out.len() + reply.pad as usize, b'a');
    out.push(b'"');
}

fn openai_prefix(out: &mut Vec<u8>, m: &Meta, id_prefix: &str, object: &str) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(id_prefix.as_bytes());
    num(out, m.id);
    out.extend_from_slice(b"\",\"object\":\"");
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(b"\",\"created\":");
    num(out, m.created);
    out.extend_from_slice(b",\"model\":");
    out.extend_from_slice(&m.model);
}

/// OpenAI's `prompt_tokens` includes the cached share; `prompt_tokens_details` says how much.
fn openai_usage(out: &mut Vec<u8>, m: &Meta) {
    let prompt = m.prompt_tokens.saturating_add(m.cached_tokens);
    out.extend_from_slice(b"\"usage\":{\"prompt_tokens\":");
    num(out, prompt);
    out.extend_from_slice(b",\"completion_tokens\":");
    num(out, m.completion_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    num(out, prompt.saturating_add(m.completion_tokens));
    if m.cached_tokens > 0 {
        out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        num(out, m.cached_tokens);
        out.push(b'}');
    }
    if m.reasoning_tokens > 0 {
        out.extend_from_slice(b",\"completion_tokens_details\":{\"reasoning_tokens\":");
        num(out, m.reasoning_tokens);
        out.push(b'}');
    }
    out.push(b'}');
}

/// Anthropic's `input_tokens` leaves out the tokens read from the cache, which
/// `cache_read_input_tokens` reports.
fn anthropic_usage(out: &mut Vec<u8>, m: &Meta, output: u64) {
    out.extend_from_slice(b"\"usage\":{\"input_tokens\":");
    num(out, m.prompt_tokens);
    if m.cached_tokens > 0 {
        out.extend_from_slice(b",\"cache_read_input_tokens\":");
        num(out, m.cached_tokens);
    }
    out.extend_from_slice(b",\"output_tokens\":");
    num(out, output);
    out.push(b'}');
}

pub(crate) fn quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

fn stop_sequence(out: &mut Vec<u8>, reply: &Reply) {
    out.extend_from_slice(b"\"stop_sequence\":");
    if reply.stop == StopReason::StopSequence {
        json_str(out, tools::STOP_SEQUENCE);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// A complete non-streaming body for `api`.
pub(crate) fn json_body(out: &mut Vec<u8>, api: Api, m: &Meta, reply: &Reply) {
    match api {
        Api::Chat => {
            openai_prefix(out, m, "chatcmpl-mock", "chat.completion");
            out.extend_from_slice(
                b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",",
            );
            if reply.thinking {
                tools::openai_reasoning(out);
                out.push(b',');
            }
            out.extend_from_slice(b"\"content\":");
            if reply.calls == 0 {
                text(out, reply);
            } else {
                out.extend_from_slice(b"null,");
                tools::openai_tool_calls(out, reply);
            }
            out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
            quoted(out, reply.stop.openai());
            out.extend_from_slice(b"}],");
            openai_usage(out, m);
            out.push(b'}');
        }
        Api::Completion => {
            openai_prefix(out, m, "cmpl-mock", "text_completion");
            out.extend_from_slice(b",\"choices\":[{\"text\":");
            text(out, reply);
            out.extend_from_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":");
            quoted(out, reply.stop.openai());
            out.extend_from_slice(b"}],");
            openai_usage(out, m);
            out.push(b'}');
        }
        Api::Cohere => super::cohere::body(out, m, reply),
        Api::Gemini => super::gemini::body(out, m, reply),
        Api::Bedrock => super::bedrock::body(out, m, reply),
        Api::Responses => super::responses_api::body(out, m, reply),
        Api::Messages => {
            out.extend_from_slice(b"{\"id\":\"msg_mock");
            num(out, m.id);
            out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
            out.extend_from_slice(&m.model);
            out.extend_from_slice(b",\"content\":[");
            for (k, block) in reply.blocks().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                tools::anthropic_block(out, reply, m, block, true);
            }
            out.extend_from_slice(b"],\"stop_reason\":");
            quoted(out, reply.stop.anthropic());
            out.push(b',');
            stop_sequence(out, reply);
            out.push(b',');
            anthropic_usage(out, m, m.completion_tokens);
            out.push(b'}');
        }
    }
}

/// A body that is not valid JSON, for the `malformed` directive.
pub(crate) const MALFORMED_BODY: &[u8] =
    b"{\"id\":\"mock-malformed\",\"object\":\"chat.completion\",\"choices\":[{\"message\":";

/// Everything the events of one SSE response are built from.
pub(crate) struct Sse<'a> {
    pub api: Api,
    pub meta: &'a Meta,
    pub reply: &'a Reply,
    /// Adds `"usage":null` to OpenAI chunks (the client asked for usage).
    pub usage_null: bool,
    /// Events written so far (the Responses API numbers them).
    pub seq: std::cell::Cell<u64>,
}

impl Sse<'_> {
    /// Appends the SSE text (`data: ...\n\n`, with an `event:` line for Anthropic) of `step`.
    pub fn event(&self, out: &mut Vec<u8>, step: Step) {
        match self.api {
            Api::Messages => self.anthropic_event(out, step),
            Api::Cohere => super::cohere::event(out, self.meta, self.reply, step),
            Api::Gemini => super::gemini::event(out, self.meta, self.reply, step),
            Api::Bedrock => super::bedrock::event(out, self.meta, self.reply, step),
            Api::Responses => super::responses_api::event(out, self, step),
            Api::Chat | Api::Completion => self.openai_event(out, step),
        }
        self.seq.set(self.seq.get() + 1);
    }

    fn openai_event(&self, out: &mut Vec<u8>, step: Step) {
        let (m, reply) = (self.meta, self.reply);
        if step == Step::Done {
            out.extend_from_slice(b"data: [DONE]\n\n");
            return;
        }
        if step == Step::Malformed {
            out.extend_from_slice(b"data: {\"id\":\"mock-malformed\",\"choices\":[{\"delta\":\n\n");
            return;
        }
        out.extend_from_slice(b"data: ");
        let chat = self.api == Api::Chat;
        if chat {
            openai_prefix(out, m, "chatcmpl-mock", "chat.completion.chunk");
        } else {
            openai_prefix(out, m, "cmpl-mock", "text_completion");
        }
        out.extend_from_slice(b",\"choices\":[");
        match step {
            Step::Usage => {}
            _ if chat => {
                out.extend_from_slice(b"{\"index\":0,\"delta\":{");
                match step {
                    // A tool-call answer has no text: content is null, as OpenAI sends it.
                    Step::Role if reply.calls > 0 => {
                        out.extend_from_slice(b"\"role\":\"assistant\",\"content\":null")
                    }
                    Step::Role => out.extend_from_slice(b"\"role\":\"assistant\",\"content\":\"\""),
                    Step::Content(i) => content_field(out, b"\"content\":\"tok", i),
                    _ => tools::openai_delta(out, reply, step),
                }
                out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
            }
            _ => {
                out.push(b'{');
                match step {
                    Step::Content(i) => content_field(out, b"\"text\":\"tok", i),
                    _ => out.extend_from_slice(b"\"text\":\"\""),
                }
                out.extend_from_slice(b",\"index\":0,\"logprobs\":null,\"finish_reason\":");
            }
        }
        if step == Step::Finish {
            quoted(out, reply.stop.openai());
            out.push(b'}');
        } else if step != Step::Usage {
            out.extend_from_slice(b"null}");
        }
        out.push(b']');
        if step == Step::Usage {
            out.push(b',');
            openai_usage(out, m);
        } else if self.usage_null {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// `giant_event`: appends an event whose one `data:` line ends in a `"pad"` string left open,
    /// and returns where its filler goes; the bytes after that close it. OpenAI: a chunk with no
    /// choices (as the usage chunk has); Anthropic: a `ping`; Responses: an unknown event type;
    /// Gemini: a chunk without candidates. All are events a client skips.
    pub fn giant(&self, out: &mut Vec<u8>) -> usize {
        if self.api == Api::Messages {
            out.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\",\"pad\":\"");
        } else if self.api == Api::Responses {
            // An event type no client knows, numbered in turn like every other event.
            out.extend_from_slice(
                b"event: mock.padding\ndata: {\"type\":\"mock.padding\",\"sequence_number\":",
            );
            num(out, self.seq.get());
            out.extend_from_slice(b",\"pad\":\"");
            self.seq.set(self.seq.get() + 1);
        } else if self.api == Api::Gemini {
            // A chunk without candidates.
            out.extend_from_slice(b"data: {\"candidates\":[],\"pad\":\"");
        } else {
            out.extend_from_slice(b"data: ");
            if self.api == Api::Chat {
                openai_prefix(out, self.meta, "chatcmpl-mock", "chat.completion.chunk");
            } else {
                openai_prefix(out, self.meta, "cmpl-mock", "text_completion");
            }
            out.extend_from_slice(b",\"choices\":[]");
            if self.usage_null {
                out.extend_from_slice(b",\"usage\":null");
            }
            out.extend_from_slice(b",\"pad\":\"");
        }
        let at = out.len();
        out.extend_from_slice(b"\"}\n\n");
        at
    }

    fn anthropic_event(&self, out: &mut Vec<u8>, step: Step) {
        let (m, reply) = (self.meta, self.reply);
        let name: &[u8] = match step {
            Step::MessageStart => b"message_start",
            Step::BlockStart(_) => b"content_block_start",
            Step::Ping => b"ping",
            Step::BlockStop(_) => b"content_block_stop",
            Step::MessageDelta => b"message_delta",
            Step::MessageStop => b"message_stop",
            _ => b"content_block_delta",
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name);
        out.extend_from_slice(b"\ndata: ");
        match step {
            Step::MessageStart => {
                out.extend_from_slice(
                    b"{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock",
                );
                num(out, m.id);
                out.extend_from_slice(b"\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
                out.extend_from_slice(&m.model);
                out.extend_from_slice(
                    b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,",
                );
                anthropic_usage(out, m, 0);
                out.extend_from_slice(b"}}");
            }
            Step::BlockStart(block) => {
                out.extend_from_slice(b"{\"type\":\"content_block_start\",\"index\":");
                num(out, reply.block_index(block));
                out.extend_from_slice(b",\"content_block\":");
                tools::anthropic_block(out, reply, m, block, false);
                out.push(b'}');
            }
            Step::Ping => out.extend_from_slice(b"{\"type\":\"ping\"}"),
            Step::Malformed => out.extend_from_slice(
                b"{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":",
            ),
            Step::Content(i) => {
                out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
                num(out, reply.block_index(Block::Text));
                out.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",");
                content_field(out, b"\"text\":\"tok", i);
                out.extend_from_slice(b"}}");
            }
            Step::Thinking(_) | Step::Signature | Step::ToolArgs { .. } => {
                tools::anthropic_delta(out, reply, m, step)
            }
            Step::BlockStop(block) => {
                out.extend_from_slice(b"{\"type\":\"content_block_stop\",\"index\":");
                num(out, reply.block_index(block));
                out.push(b'}');
            }
            Step::MessageDelta => {
                out.extend_from_slice(b"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
                quoted(out, reply.stop.anthropic());
                out.push(b',');
                stop_sequence(out, reply);
                out.extend_from_slice(b"},\"usage\":{\"output_tokens\":");
                num(out, m.completion_tokens);
                out.extend_from_slice(b"}}");
            }
            _ => out.extend_from_slice(b"{\"type\":\"message_stop\"}"),
        }
        out.extend_from_slice(b"\n\n");
    }
}

pub(crate) fn content_field(out: &mut Vec<u8>, prefix: &[u8], i: u64) {
    out.extend_from_slice(prefix);
    num(out, i);
    out.extend_from_slice(b" \"");
}

/// Vector `i` of `dims` deterministic floats as a JSON array: 0.001 ..= 0.999, as text
/// without float formatting.
pub(crate) fn vector(out: &mut Vec<u8>, i: u64, dims: u64) {
    out.push(b'[');
    for j in 0..dims {
        if j > 0 {
            out.push(b',');
        }
        let v = (i * 31 + j * 17) % 999 + 1;
        out.extend_from_slice(b"0.");
        out.extend_from_slice(&[
            b'0' + (v / 100) as u8,
            b'0' + (v / 10 % 10) as u8,
            b'0' + (v % 10) as u8,
        ]);
    }
    out.push(b']');
}

/// An OpenAI embeddings list with `count` vectors of `dims` floats from `src`.
pub(crate) fn embeddings(
    out: &mut Vec<u8>,
    m: &Meta,
    count: u64,
    dims: u64,
    src: super::words::Source,
) {
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        num(out, i);
        out.extend_from_slice(b",\"embedding\":");
        src.vector(out, i, dims);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"model\":");
    out.extend_from_slice(&m.model);
    out.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    num(out, m.prompt_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    num(out, m.prompt_tokens);
    out.extend_from_slice(b"}}");
}

/// The model ids `GET /v1/models` lists.
pub const MODELS: &[&str] = &[
    "mock-model",
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "claude-3-5-haiku-latest",
];

pub(crate) fn models(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    for (i, id) in MODELS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(
            b"\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mock\"}",
        );
    }
    out.extend_from_slice(b"]}");
}
