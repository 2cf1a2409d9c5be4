//! Gemini as an ingress, for Google's SDKs (`google-genai`): a `GenerateContentRequest` read
//! into the canonical form, answers written as `GenerateContentResponse`s, streams as a chunk
//! per piece of text with the function calls, finish reason and usage in the last, and errors
//! in Google's `{"error":{"code","message","status"}}`. The model and whether to stream come
//! from the path (the pipeline sets them). No I/O.
//!
//! Gemini matches a function's result to its call by name; calls without an `id` get
//! `call_{n}` and each result takes the oldest unanswered call of its name.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::super::adapter::{Ingress, StreamEncode};
use super::Gemini;
use super::upstream::str_at;
use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Effort, Event, Finish, Image, Json, Message, Part, Reasoning,
    ResponseFormat, Role, Stamp, Tool, ToolChoice, note_once,
};

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, message)
}

fn json_text(v: Json<'_>) -> String {
    simd_json::prelude::Writable::encode(v)
}

/// A function response's `response` as tool-result text: a lone `result`/`output` string is
/// the text, anything else its JSON; a lone `error` marks the call failed.
fn result_of(r: Option<Json<'_>>) -> (String, bool) {
    let Some(r) = r else {
        return (String::new(), false);
    };
    if let Some(o) = r.as_object()
        && o.len() == 1
    {
        for k in ["result", "output", "error"] {
            if let Some(s) = o.get(k).and_then(|x| x.as_str()) {
                return (s.to_owned(), k == "error");
            }
        }
    }
    (json_text(r), false)
}

struct Calls<'a> {
    /// (name, id, answered)
    open: Vec<(&'a str, Cow<'a, str>, bool)>,
    made: usize,
}

fn decode_parts<'a>(
    list: Json<'a>,
    role: Role,
    calls: &mut Calls<'a>,
) -> Result<Vec<Part<'a>>, GatewayError> {
    let mut parts = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        if let Some(t) = str_at(p, "text") {
            if p.get("thought").and_then(|x| x.as_bool()) == Some(true) {
                parts.push(Part::Thinking {
                    text: Cow::Borrowed(t),
                    signature: str_at(p, "thoughtSignature").map(Cow::Borrowed),
                });
            } else {
                parts.push(Part::Text(Cow::Borrowed(t)));
            }
        } else if let Some(d) = p.get("inlineData") {
            parts.push(Part::Image(Image::Base64 {
                media_type: Cow::Borrowed(str_at(d, "mimeType").unwrap_or("image/png")),
                data: Cow::Borrowed(str_at(d, "data").unwrap_or_default()),
            }));
        } else if let Some(f) = p.get("fileData") {
            let uri = str_at(f, "fileUri").ok_or_else(|| bad("fileData needs a fileUri"))?;
            parts.push(Part::Image(Image::Url(Cow::Borrowed(uri))));
        } else if let Some(f) = p.get("functionCall") {
            let name = str_at(f, "name").ok_or_else(|| bad("functionCall needs a name"))?;
            let id = str_at(f, "id")
                .map_or_else(|| Cow::Owned(format!("call_{}", calls.made)), Cow::Borrowed);
            calls.made += 1;
            calls.open.push((name, id.clone(), false));
            let arguments = f
                .get("args")
                .map_or(Cow::Borrowed("{}"), |a| Cow::Owned(json_text(a)));
            parts.push(Part::ToolCall {
                id,
                name: Cow::Borrowed(name),
                arguments,
            });
        } else if let Some(f) = p.get("functionResponse") {
            let name = str_at(f, "name").ok_or_else(|| bad("functionResponse needs a name"))?;
            let id = match str_at(f, "id") {
                Some(id) => Cow::Borrowed(id),
                None => {
                    let call = calls
                        .open
                        .iter_mut()
                        .find(|(n, _, done)| *n == name && !done);
                    match call {
                        Some(c) => {
                            c.2 = true;
                            c.1.clone()
                        }
                        None => Cow::Borrowed(name),
                    }
                }
            };
            let (text, is_error) = result_of(f.get("response"));
            parts.push(Part::ToolResult {
                id,
                content: vec![Part::Text(Cow::Owned(text))],
                is_error,
            });
        } else if role == Role::User && p.as_object().is_some_and(|o| o.is_empty()) {
            continue;
        } else {
            return Err(bad(
                "a part must hold text, inlineData, fileData, functionCall or functionResponse",
            ));
        }
    }
    Ok(parts)
}

fn decode_tools<'a>(v: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    for t in v.as_array().into_iter().flatten() {
        let Some(o) = t.as_object() else { continue };
        for (k, decls) in o.iter() {
            if k != "functionDeclarations" {
                return Err(bad(format!(
                    "the tool `{k}` runs on Google's servers; only functionDeclarations translate \
                     to this model's provider"
                )));
            }
            for d in decls.as_array().into_iter().flatten() {
                let name =
                    str_at(d, "name").ok_or_else(|| bad("a function declaration needs a name"))?;
                let json_schema = d.get("parametersJsonSchema");
                r.tools.push(Tool {
                    name: Cow::Borrowed(name),
                    description: str_at(d, "description").map(Cow::Borrowed),
                    openapi: json_schema.is_none() && d.get("parameters").is_some(),
                    parameters: json_schema.or_else(|| d.get("parameters")),
                });
            }
        }
    }
    Ok(())
}

fn decode_config<'a>(g: Json<'a>, r: &mut ChatRequest<'a>) {
    let f = |k: &str| g.get(k).and_then(|x| x.cast_f64());
    let u = |k: &str| g.get(k).and_then(|x| x.as_u64());
    r.temperature = f("temperature");
    r.top_p = f("topP");
    r.top_k = u("topK");
    r.max_tokens = u("maxOutputTokens");
    r.n = u("candidateCount");
    r.seed = g.get("seed").and_then(|x| x.as_i64());
    r.presence_penalty = f("presencePenalty");
    r.frequency_penalty = f("frequencyPenalty");
    for s in g
        .get("stopSequences")
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(s) = s.as_str() {
            r.stop.push(Cow::Borrowed(s));
        }
    }
    let schema = g
        .get("responseJsonSchema")
        .or_else(|| g.get("responseSchema"));
    r.response_format = match (str_at(g, "responseMimeType"), schema) {
        (_, Some(s)) => Some(ResponseFormat::JsonSchema {
            name: Cow::Borrowed("response"),
            schema: Some(s),
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        _ => None,
    };
    if let Some(t) = g.get("thinkingConfig") {
        r.reasoning = match (
            t.get("thinkingBudget").and_then(|b| b.as_i64()),
            str_at(t, "thinkingLevel"),
        ) {
            (Some(0), _) => Some(Reasoning::Disabled),
            (Some(b), _) if b > 0 => Some(Reasoning::Budget(b as u64)),
            (_, Some(l)) if l.eq_ignore_ascii_case("low") => Some(Reasoning::Effort(Effort::Low)),
            (_, Some(l)) if l.eq_ignore_ascii_case("high") => Some(Reasoning::Effort(Effort::High)),
            _ => None,
        };
    }
    for k in [
        "responseLogprobs",
        "logprobs",
        "mediaResolution",
        "speechConfig",
        "responseModalities",
    ] {
        if g.get(k).is_some() {
            note_once(&mut r.ignored, Cow::Borrowed(k));
        }
    }
}

pub fn decode_request<'a>(v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
    if !v.is_object() {
        return Err(bad("the request body must be a JSON object"));
    }
    let mut r = ChatRequest {
        include_usage: true,
        ..ChatRequest::default()
    };
    let mut calls = Calls {
        open: Vec::new(),
        made: 0,
    };
    if let Some(s) = v.get("systemInstruction") {
        if let Some(t) = s.as_str() {
            r.system.push(Cow::Borrowed(t));
        }
        for p in s
            .get("parts")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(t) = str_at(p, "text") {
                r.system.push(Cow::Borrowed(t));
            }
        }
    }
    let contents = v
        .get("contents")
        .and_then(|c| c.as_array())
        .ok_or_else(|| bad("`contents` must be a list of turns"))?;
    for c in contents {
        let role = match str_at(c, "role") {
            Some("model") => Role::Assistant,
            Some("user" | "function") | None => Role::User,
            Some(other) => return Err(bad(format!("unknown role {other:?} (user or model)"))),
        };
        let parts = match c.get("parts") {
            Some(p) => decode_parts(p, role, &mut calls)?,
            None => Vec::new(),
        };
        r.messages.push(Message { role, parts });
    }
    if let Some(t) = v.get("tools") {
        decode_tools(t, &mut r)?;
    }
    if let Some(fc) = v
        .get("toolConfig")
        .and_then(|t| t.get("functionCallingConfig"))
    {
        let allowed: Vec<&str> = fc
            .get("allowedFunctionNames")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .collect();
        r.tool_choice = match str_at(fc, "mode") {
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") if allowed.len() == 1 => Some(ToolChoice::Tool(Cow::Borrowed(allowed[0]))),
            Some("ANY") => Some(ToolChoice::Required),
            Some("AUTO" | "VALIDATED") => Some(ToolChoice::Auto),
            _ => None,
        };
    }
    if let Some(g) = v.get("generationConfig") {
        decode_config(g, &mut r);
    }
    for k in ["safetySettings", "cachedContent", "labels"] {
        if v.get(k).is_some() {
            note_once(&mut r.ignored, Cow::Borrowed(k));
        }
    }
    Ok(r)
}

// === answers ===

fn finish_name(f: Option<Finish>) -> &'static str {
    match f {
        Some(Finish::Length) => "MAX_TOKENS",
        Some(Finish::ContentFilter) => "SAFETY",
        _ => "STOP",
    }
}

fn usage_metadata(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"\"usageMetadata\":{\"promptTokenCount\":");
    push_u64(out, u.input);
    out.extend_from_slice(b",\"candidatesTokenCount\":");
    push_u64(out, u.output.saturating_sub(u.reasoning));
    out.extend_from_slice(b",\"totalTokenCount\":");
    push_u64(out, u.input + u.output);
    if u.cache_read > 0 {
        out.extend_from_slice(b",\"cachedContentTokenCount\":");
        push_u64(out, u.cache_read);
    }
    if u.reasoning > 0 {
        out.extend_from_slice(b",\"thoughtsTokenCount\":");
        push_u64(out, u.reasoning);
    }
    out.push(b'}');
}

fn function_call(out: &mut Vec<u8>, id: &str, name: &str, arguments: &str) {
    out.extend_from_slice(b"{\"functionCall\":{\"id\":");
    push_str(out, id);
    out.extend_from_slice(b",\"name\":");
    push_str(out, name);
    out.extend_from_slice(b",\"args\":");
    let args = crate::providers::canonical::arguments_object(arguments).unwrap_or("{}");
    out.extend_from_slice(args.as_bytes());
    out.extend_from_slice(b"}}");
}

fn text_part(out: &mut Vec<u8>, text: &str, thought: bool, signature: Option<&str>) {
    out.extend_from_slice(b"{\"text\":");
    push_str(out, text);
    if thought {
        out.extend_from_slice(b",\"thought\":true");
    }
    if let Some(s) = signature {
        out.extend_from_slice(b",\"thoughtSignature\":");
        push_str(out, s);
    }
    out.push(b'}');
}

/// `{"candidates":[{"content":{"role":"model","parts":[` — the caller writes the parts.
fn open_candidate(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
}

fn close_chunk(
    out: &mut Vec<u8>,
    finish: Option<&str>,
    usage: Option<&Usage>,
    model: &str,
    id: &str,
) {
    out.extend_from_slice(b"]}");
    if let Some(f) = finish {
        out.extend_from_slice(b",\"finishReason\":");
        push_str(out, f);
    }
    out.extend_from_slice(b",\"index\":0}],");
    if let Some(u) = usage {
        usage_metadata(out, u);
        out.push(b',');
    }
    out.extend_from_slice(b"\"modelVersion\":");
    push_str(out, model);
    out.extend_from_slice(b",\"responseId\":");
    push_str(out, id);
    out.push(b'}');
}

pub fn encode_response(r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    open_candidate(out);
    let mut first = true;
    for p in &r.parts {
        let at = out.len();
        if !first {
            out.push(b',');
        }
        match p {
            Part::Text(t) => text_part(out, t, false, None),
            Part::Thinking { text, signature } => text_part(out, text, true, signature.as_deref()),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => function_call(out, id, name, arguments),
            _ => {
                out.truncate(at);
                continue;
            }
        }
        first = false;
    }
    close_chunk(
        out,
        Some(finish_name(r.finish)),
        Some(&r.usage),
        if r.model.is_empty() {
            stamp.model
        } else {
            &r.model
        },
        &stamp.answer_id(&r.id, ""),
    );
}

/// Writes the client's stream: a chunk per piece of text or thinking; function calls, the
/// finish reason and usage in the last chunk.
#[derive(Default)]
pub struct StreamEncoder {
    id: String,
    model: String,
    calls: Vec<(String, String, String)>,
    finish: Option<Finish>,
    usage: Usage,
}

impl StreamEncoder {
    pub fn new(stamp: &Stamp<'_>) -> StreamEncoder {
        StreamEncoder {
            model: stamp.model.to_owned(),
            id: stamp.answer_id("", "").into_owned(),
            ..StreamEncoder::default()
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, part: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(b"data: ");
        open_candidate(out);
        part(out);
        close_chunk(out, None, None, &self.model, &self.id);
        out.extend_from_slice(b"\n\n");
    }

    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        match ev {
            Event::Start { id, model, usage } => {
                if !id.is_empty() {
                    self.id = id.to_string();
                }
                if !model.is_empty() {
                    self.model = model.to_string();
                }
                self.usage = *usage;
            }
            Event::Text(t) if !t.is_empty() => self.chunk(out, |o| text_part(o, t, false, None)),
            Event::Thinking(t) if !t.is_empty() => self.chunk(out, |o| text_part(o, t, true, None)),
            Event::ThinkingSignature(s) => self.chunk(out, |o| text_part(o, "", true, Some(s))),
            Event::ToolCall { index, id, name } => {
                let i = *index as usize;
                if self.calls.len() <= i {
                    self.calls.resize(i + 1, Default::default());
                }
                self.calls[i].0 = id.to_string();
                self.calls[i].1 = name.to_string();
            }
            Event::ToolArguments { index, fragment } => {
                if let Some(c) = self.calls.get_mut(*index as usize) {
                    c.2.push_str(fragment);
                }
            }
            Event::Finish { reason, .. } => self.finish = Some(*reason),
            Event::Usage(u) => self.usage = *u,
            Event::Error { .. } => {
                let e = match ev {
                    Event::Error { kind, message } => GatewayError::new(*kind, message.to_string()),
                    _ => unreachable!(),
                };
                Gemini.error_event(&e, out);
            }
            Event::Done => {
                out.extend_from_slice(b"data: ");
                open_candidate(out);
                if self.calls.is_empty() {
                    text_part(out, "", false, None);
                }
                for (i, (id, name, args)) in self.calls.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    function_call(out, id, name, args);
                }
                let finish = finish_name(self.finish);
                close_chunk(out, Some(finish), Some(&self.usage), &self.model, &self.id);
                out.extend_from_slice(b"\n\n");
            }
            _ => {}
        }
    }
}

impl StreamEncode for StreamEncoder {
    fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        StreamEncoder::encode(self, ev, out)
    }
}

/// Google's status name for an HTTP status.
fn google_status(status: u16) -> &'static str {
    match status {
        400 | 405 | 413 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        402 | 403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

fn write_error(e: &GatewayError, out: &mut Vec<u8>) {
    let status = e.status();
    out.extend_from_slice(b"{\"error\":{\"code\":");
    push_u64(out, u64::from(status));
    out.extend_from_slice(b",\"message\":");
    push_str(out, &e.message);
    out.extend_from_slice(b",\"status\":");
    push_str(out, google_status(status));
    out.extend_from_slice(b"}}");
}

impl Ingress for Gemini {
    fn decode_request<'a>(&self, v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
        decode_request(v)
    }

    fn encode_response(&self, r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
        encode_response(r, stamp, out)
    }

    fn stream_encoder(&self, stamp: &Stamp<'_>, _include_usage: bool) -> Box<dyn StreamEncode> {
        Box::new(StreamEncoder::new(stamp))
    }

    fn error_body(&self, e: &GatewayError, out: &mut Vec<u8>) {
        write_error(e, out)
    }

    fn error_event(&self, e: &GatewayError, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        write_error(e, out);
        out.extend_from_slice(b"\n\n");
    }
}

#[cfg(test)]
mod tests;
