//! The Responses API as an ingress, for the openai SDK's `client.responses`: a request's
//! `input` items and settings read into the canonical form, a whole answer written as a
//! `response` object, errors in OpenAI's shape. The typed stream is [`super::events`].
//! Requests that build on state OpenAI stores (`previous_response_id`, `conversation`, item
//! references) cannot be translated: they get a 400 saying why (a Responses-API upstream
//! splices them instead, and never gets here). No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::upstream::str_at;
use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::canonical::{
    ChatRequest, ChatResponse, Effort, Finish, Image, Json, Message, Part, Reasoning,
    ResponseFormat, Role, Stamp, Tool, ToolChoice, note_once,
};

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, message)
}

const STATEFUL: &str = "needs the conversation state OpenAI stores; this model's provider does \
    not speak the Responses API, so send the whole conversation in `input` instead";

/// Adds `part` to the last turn when it has `role`, else to a new turn.
fn push<'a>(messages: &mut Vec<Message<'a>>, role: Role, part: Part<'a>) {
    match messages.last_mut() {
        Some(m) if m.role == role => m.parts.push(part),
        _ => messages.push(Message {
            role,
            parts: vec![part],
        }),
    }
}

fn content_parts<'a>(c: Json<'a>, out: &mut Vec<Part<'a>>) -> Result<(), GatewayError> {
    if let Some(t) = c.as_str() {
        out.push(Part::Text(Cow::Borrowed(t)));
        return Ok(());
    }
    for p in c.as_array().into_iter().flatten() {
        match str_at(p, "type") {
            Some("input_text" | "output_text" | "text") => {
                out.push(Part::Text(Cow::Borrowed(
                    str_at(p, "text").unwrap_or_default(),
                )));
            }
            Some("refusal") => {
                out.push(Part::Text(Cow::Borrowed(
                    str_at(p, "refusal").unwrap_or_default(),
                )));
            }
            Some("input_image") => match str_at(p, "image_url") {
                Some(u) => out.push(Part::Image(Image::Url(Cow::Borrowed(u)))),
                None => return Err(bad(format!("an input_image by file_id {STATEFUL}"))),
            },
            Some(other) => {
                return Err(bad(format!(
                    "content of type `{other}` cannot be translated for this model's provider"
                )));
            }
            None => return Err(bad("a content part needs a `type`")),
        }
    }
    Ok(())
}

fn decode_input<'a>(input: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    if let Some(t) = input.as_str() {
        push(&mut r.messages, Role::User, Part::Text(Cow::Borrowed(t)));
        return Ok(());
    }
    let items = input
        .as_array()
        .ok_or_else(|| bad("`input` must be a string or a list of items"))?;
    for item in items {
        let kind = str_at(item, "type").unwrap_or("message");
        match kind {
            "message" => {
                let mut parts = Vec::new();
                if let Some(c) = item.get("content") {
                    content_parts(c, &mut parts)?;
                }
                match str_at(item, "role") {
                    Some("system" | "developer") => {
                        for p in parts {
                            if let Part::Text(t) = p {
                                r.system.push(t);
                            }
                        }
                    }
                    Some("assistant") => {
                        for p in parts {
                            push(&mut r.messages, Role::Assistant, p);
                        }
                    }
                    Some("user") | None => {
                        for p in parts {
                            push(&mut r.messages, Role::User, p);
                        }
                    }
                    Some(other) => return Err(bad(format!("unknown role {other:?}"))),
                }
            }
            "function_call" => {
                let call = Part::ToolCall {
                    id: Cow::Borrowed(
                        str_at(item, "call_id")
                            .ok_or_else(|| bad("a function_call needs a call_id"))?,
                    ),
                    name: Cow::Borrowed(str_at(item, "name").unwrap_or_default()),
                    arguments: Cow::Borrowed(str_at(item, "arguments").unwrap_or("{}")),
                };
                push(&mut r.messages, Role::Assistant, call);
            }
            "function_call_output" => {
                let id = str_at(item, "call_id")
                    .ok_or_else(|| bad("a function_call_output needs a call_id"))?;
                let mut content = Vec::new();
                if let Some(o) = item.get("output") {
                    content_parts(o, &mut content)?;
                }
                let result = Part::ToolResult {
                    id: Cow::Borrowed(id),
                    content,
                    is_error: false,
                };
                push(&mut r.messages, Role::User, result);
            }
            "reasoning" => {
                let summary: Vec<&str> = item
                    .get("summary")
                    .and_then(|s| s.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|s| str_at(s, "text"))
                    .collect();
                if !summary.is_empty() {
                    let text = Cow::Owned(summary.join("\n\n"));
                    push(
                        &mut r.messages,
                        Role::Assistant,
                        Part::Thinking {
                            text,
                            signature: None,
                        },
                    );
                }
            }
            "item_reference" => return Err(bad(format!("an item_reference {STATEFUL}"))),
            other => {
                return Err(bad(format!(
                    "input items of type `{other}` run on OpenAI's servers; they pass through \
                     only to an openai-responses provider"
                )));
            }
        }
    }
    Ok(())
}

fn decode_tools<'a>(tools: Json<'a>, r: &mut ChatRequest<'a>) -> Result<(), GatewayError> {
    for t in tools.as_array().into_iter().flatten() {
        match str_at(t, "type") {
            Some("function") => r.tools.push(Tool {
                openapi: false,
                name: Cow::Borrowed(
                    str_at(t, "name").ok_or_else(|| bad("a function tool needs a name"))?,
                ),
                description: str_at(t, "description").map(Cow::Borrowed),
                parameters: t.get("parameters").filter(|p| !p.is_null()),
            }),
            Some(other) => {
                return Err(bad(format!(
                    "tool type `{other}` runs on OpenAI's servers; it passes through only to an \
                     openai-responses provider"
                )));
            }
            None => return Err(bad("a tool needs a `type`")),
        }
    }
    Ok(())
}

pub fn decode_request<'a>(v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
    if !v.is_object() {
        return Err(bad("the request body must be a JSON object"));
    }
    for field in ["previous_response_id", "conversation"] {
        if v.get(field).is_some_and(|x| !x.is_null()) {
            return Err(bad(format!("`{field}` {STATEFUL}")));
        }
    }
    let mut r = ChatRequest {
        model: Cow::Borrowed(str_at(v, "model").unwrap_or_default()),
        include_usage: true,
        stream: v.get("stream").and_then(|s| s.as_bool()).unwrap_or(false),
        ..ChatRequest::default()
    };
    if let Some(i) = str_at(v, "instructions") {
        r.system.push(Cow::Borrowed(i));
    }
    decode_input(
        v.get("input").ok_or_else(|| bad("`input` is required"))?,
        &mut r,
    )?;
    if let Some(t) = v.get("tools") {
        decode_tools(t, &mut r)?;
    }
    r.tool_choice = match v.get("tool_choice") {
        Some(c) if c.as_str() == Some("auto") => Some(ToolChoice::Auto),
        Some(c) if c.as_str() == Some("required") => Some(ToolChoice::Required),
        Some(c) if c.as_str() == Some("none") => Some(ToolChoice::None),
        Some(c) if str_at(c, "type") == Some("function") => {
            str_at(c, "name").map(|n| ToolChoice::Tool(Cow::Borrowed(n)))
        }
        _ => None,
    };
    r.parallel_tool_calls = v.get("parallel_tool_calls").and_then(|p| p.as_bool());
    r.max_tokens = v.get("max_output_tokens").and_then(|m| m.as_u64());
    r.temperature = v.get("temperature").and_then(|t| t.cast_f64());
    r.top_p = v.get("top_p").and_then(|t| t.cast_f64());
    r.user = str_at(v, "user")
        .or_else(|| str_at(v, "safety_identifier"))
        .map(Cow::Borrowed);
    if let Some(f) = v.get("text").and_then(|t| t.get("format")) {
        r.response_format = match str_at(f, "type") {
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => Some(ResponseFormat::JsonSchema {
                name: Cow::Borrowed(str_at(f, "name").unwrap_or("response")),
                schema: f.get("schema"),
                strict: f.get("strict").and_then(|s| s.as_bool()),
            }),
            _ => None,
        };
    }
    r.reasoning = match v.get("reasoning").and_then(|x| str_at(x, "effort")) {
        Some("minimal") => Some(Reasoning::Effort(Effort::Minimal)),
        Some("low") => Some(Reasoning::Effort(Effort::Low)),
        Some("medium") => Some(Reasoning::Effort(Effort::Medium)),
        Some("high") => Some(Reasoning::Effort(Effort::High)),
        _ => None,
    };
    if v.get("store").and_then(|s| s.as_bool()) == Some(true) {
        note_once(&mut r.ignored, Cow::Borrowed("store"));
    }
    for k in [
        "truncation",
        "include",
        "background",
        "service_tier",
        "top_logprobs",
    ] {
        if v.get(k).is_some_and(|x| !x.is_null()) {
            note_once(&mut r.ignored, Cow::Borrowed(k));
        }
    }
    Ok(r)
}

// === answers ===

/// `resp_…` for an answer's id (one that has the prefix keeps it).
pub(super) fn response_id(id: &str) -> String {
    if id.starts_with("resp_") {
        id.to_owned()
    } else {
        format!(
            "resp_{}",
            id.trim_start_matches("chatcmpl-")
                .trim_start_matches("msg_")
        )
    }
}

/// One output item, as the whole response and the stream write it.
pub(super) enum Item {
    Reasoning {
        text: String,
        encrypted: Option<String>,
    },
    Message {
        text: String,
    },
    Call {
        call_id: String,
        name: String,
        arguments: String,
    },
}

pub(super) fn items_of(parts: &[Part<'_>]) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    for p in parts {
        match p {
            Part::Text(t) => match items.last_mut() {
                Some(Item::Message { text }) => text.push_str(t),
                _ => items.push(Item::Message {
                    text: t.to_string(),
                }),
            },
            Part::Thinking { text, .. } => items.push(Item::Reasoning {
                text: text.to_string(),
                encrypted: None,
            }),
            Part::RedactedThinking(e) => items.push(Item::Reasoning {
                text: String::new(),
                encrypted: Some(e.to_string()),
            }),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => items.push(Item::Call {
                call_id: id.to_string(),
                name: name.to_string(),
                arguments: arguments.to_string(),
            }),
            _ => {}
        }
    }
    items
}

/// The id of output item `n` of response `rid` (`msg_`, `fc_` or `rs_` before it).
pub(super) fn item_id(prefix: &str, rid: &str, n: usize) -> String {
    format!("{prefix}{}_{n}", rid.trim_start_matches("resp_"))
}

/// Writes output item `n` of response `rid`, `status` as given.
pub(super) fn write_item(out: &mut Vec<u8>, rid: &str, n: usize, item: &Item, status: &str) {
    let id = |out: &mut Vec<u8>, prefix: &str| {
        out.extend_from_slice(b"\"id\":");
        push_str(out, &item_id(prefix, rid, n));
    };
    match item {
        Item::Reasoning { text, encrypted } => {
            out.extend_from_slice(b"{\"type\":\"reasoning\",");
            id(out, "rs_");
            out.extend_from_slice(b",\"summary\":[");
            if !text.is_empty() {
                out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
                push_str(out, text);
                out.push(b'}');
            }
            out.push(b']');
            if let Some(e) = encrypted {
                out.extend_from_slice(b",\"encrypted_content\":");
                push_str(out, e);
            }
            out.push(b'}');
        }
        Item::Message { text } => {
            out.extend_from_slice(b"{\"type\":\"message\",");
            id(out, "msg_");
            out.extend_from_slice(b",\"status\":\"");
            out.extend_from_slice(status.as_bytes());
            out.extend_from_slice(b"\",\"role\":\"assistant\",\"content\":[");
            output_text(out, text);
            out.extend_from_slice(b"]}");
        }
        Item::Call {
            call_id,
            name,
            arguments,
        } => {
            out.extend_from_slice(b"{\"type\":\"function_call\",");
            id(out, "fc_");
            out.extend_from_slice(b",\"status\":\"");
            out.extend_from_slice(status.as_bytes());
            out.extend_from_slice(b"\",\"call_id\":");
            push_str(out, call_id);
            out.extend_from_slice(b",\"name\":");
            push_str(out, name);
            out.extend_from_slice(b",\"arguments\":");
            push_str(out, arguments);
            out.push(b'}');
        }
    }
}

pub(super) fn output_text(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"type\":\"output_text\",\"text\":");
    push_str(out, text);
    out.extend_from_slice(b",\"annotations\":[],\"logprobs\":[]}");
}

fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, u.input);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    push_u64(out, u.cache_read);
    out.extend_from_slice(b"},\"output_tokens\":");
    push_u64(out, u.output);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    push_u64(out, u.reasoning);
    out.extend_from_slice(b"},\"total_tokens\":");
    push_u64(out, u.input + u.output);
    out.push(b'}');
}

/// A whole `response` object. `finish` `None` is one still in progress (the stream's first
/// events), with no usage.
pub(super) fn write_response(
    out: &mut Vec<u8>,
    rid: &str,
    model: &str,
    created: u64,
    items: &[Item],
    finish: Option<Finish>,
    usage: Option<&Usage>,
) {
    let (status, incomplete) = match finish {
        None => ("in_progress", None),
        Some(Finish::Length) => ("incomplete", Some("max_output_tokens")),
        Some(Finish::ContentFilter) => ("incomplete", Some("content_filter")),
        Some(_) => ("completed", None),
    };
    out.extend_from_slice(b"{\"id\":");
    push_str(out, rid);
    out.extend_from_slice(b",\"object\":\"response\",\"created_at\":");
    push_u64(out, created);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\",\"error\":null,\"incomplete_details\":");
    match incomplete {
        Some(r) => {
            out.extend_from_slice(b"{\"reason\":\"");
            out.extend_from_slice(r.as_bytes());
            out.extend_from_slice(b"\"}");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"instructions\":null,\"model\":");
    push_str(out, model);
    out.extend_from_slice(b",\"output\":[");
    let item_status = if finish.is_some() {
        "completed"
    } else {
        "in_progress"
    };
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_item(out, rid, n, item, item_status);
    }
    out.extend_from_slice(
        b"],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"store\":false,\
          \"text\":{\"format\":{\"type\":\"text\"}},\"tool_choice\":\"auto\",\"tools\":[],\
          \"truncation\":\"disabled\",\"metadata\":{},\"usage\":",
    );
    match usage {
        Some(u) => write_usage(out, u),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

pub fn encode_response(r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    let model = if r.model.is_empty() {
        stamp.model
    } else {
        &r.model
    };
    let created = stamp.created;
    let rid = response_id(&stamp.answer_id(&r.id, "resp_"));
    let items = items_of(&r.parts);
    let finish = Some(r.finish.unwrap_or(Finish::EndTurn));
    write_response(
        out,
        &rid,
        model,
        r.created.unwrap_or(created),
        &items,
        finish,
        Some(&r.usage),
    );
}
