//! OpenAI Responses API answers (`POST /v1/responses`): the whole `response` object and its
//! typed stream (`event: <type>` and data with the same `type` and an increasing
//! `sequence_number`): `response.created`, `.in_progress`, per output item `output_item.added`,
//! its deltas and `.done` events (the message's content part, reasoning summary text and
//! function-call arguments), then `response.completed` — or `response.incomplete` when the
//! answer ran out of tokens. Errors use OpenAI's error body; in a stream an `error` event.
//!
//! Output items are numbered as [`Reply::blocks`] orders them: reasoning first when present,
//! then the message or each function call. Usage: `input_tokens` includes the cached share,
//! `output_tokens` the reasoning.

use super::directives::StopReason;
use super::reply::{Block, Reply, Step};
use super::responses::{Meta, Sse, json_str, num, quoted, text};
use super::tools::{THINKING, THINKING_TEXT};

fn incomplete(reply: &Reply) -> bool {
    reply.stop == StopReason::MaxTokens
}

fn usage(out: &mut Vec<u8>, m: &Meta) {
    let input = m.prompt_tokens.saturating_add(m.cached_tokens);
    out.extend_from_slice(b"\"usage\":{\"input_tokens\":");
    num(out, input);
    out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
    num(out, m.cached_tokens);
    out.extend_from_slice(b"},\"output_tokens\":");
    num(out, m.completion_tokens);
    out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
    num(out, m.reasoning_tokens);
    out.extend_from_slice(b"},\"total_tokens\":");
    num(out, input.saturating_add(m.completion_tokens));
    out.push(b'}');
}

/// The `id` of an output item.
fn item_id(out: &mut Vec<u8>, m: &Meta, block: Block) {
    out.push(b'"');
    match block {
        Block::Thinking => out.extend_from_slice(b"rs_mock"),
        Block::Text => out.extend_from_slice(b"msg_mock"),
        Block::Tool(_) => out.extend_from_slice(b"fc_mock"),
    }
    num(out, m.id);
    if let Block::Tool(c) = block {
        out.push(b'_');
        num(out, c as u64);
    }
    out.push(b'"');
}

fn output_text(out: &mut Vec<u8>, reply: &Reply, full: bool) {
    out.extend_from_slice(b"{\"type\":\"output_text\",\"text\":");
    if full {
        text(out, reply);
    } else {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b",\"annotations\":[]}");
}

/// An output item: complete (`full`), or as `output_item.added` announces it.
fn item(out: &mut Vec<u8>, m: &Meta, reply: &Reply, block: Block, full: bool) {
    let status = match (full, incomplete(reply)) {
        (false, _) => "in_progress",
        (true, true) => "incomplete",
        (true, false) => "completed",
    };
    match block {
        Block::Thinking => {
            out.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
            item_id(out, m, block);
            out.extend_from_slice(b",\"summary\":[");
            if full {
                out.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
                json_str(out, THINKING_TEXT);
                out.push(b'}');
            }
            out.push(b']');
        }
        Block::Text => {
            out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
            item_id(out, m, block);
            out.extend_from_slice(b",\"status\":");
            quoted(out, status);
            out.extend_from_slice(b",\"role\":\"assistant\",\"content\":[");
            if full {
                output_text(out, reply, true);
            }
            out.push(b']');
        }
        Block::Tool(c) => {
            out.extend_from_slice(b"{\"type\":\"function_call\",\"id\":");
            item_id(out, m, block);
            out.extend_from_slice(b",\"call_id\":\"call_mock");
            num(out, c as u64);
            out.extend_from_slice(b"\",\"name\":");
            json_str(out, reply.tool_name(c));
            out.extend_from_slice(b",\"arguments\":");
            if full {
                reply.arguments(c).quoted(out);
            } else {
                out.extend_from_slice(b"\"\"");
            }
            out.extend_from_slice(b",\"status\":");
            quoted(out, status);
        }
    }
    out.push(b'}');
}

/// The `response` object: final, or (`!done`) as `response.created` shows it.
fn response(out: &mut Vec<u8>, m: &Meta, reply: &Reply, done: bool) {
    out.extend_from_slice(b"{\"id\":\"resp_mock");
    num(out, m.id);
    out.extend_from_slice(b"\",\"object\":\"response\",\"created_at\":");
    num(out, m.created);
    out.extend_from_slice(b",\"status\":");
    match (done, incomplete(reply)) {
        (false, _) => out.extend_from_slice(b"\"in_progress\",\"incomplete_details\":null"),
        (true, true) => out.extend_from_slice(
            b"\"incomplete\",\"incomplete_details\":{\"reason\":\"max_output_tokens\"}",
        ),
        (true, false) => out.extend_from_slice(b"\"completed\",\"incomplete_details\":null"),
    }
    out.extend_from_slice(b",\"error\":null,\"model\":");
    out.extend_from_slice(&m.model);
    out.extend_from_slice(b",\"output\":[");
    if done {
        for (k, block) in reply.blocks().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            item(out, m, reply, block, true);
        }
    }
    out.extend_from_slice(b"],");
    if done {
        usage(out, m);
    } else {
        out.extend_from_slice(b"\"usage\":null");
    }
    out.push(b'}');
}

/// A complete non-streaming answer.
pub(crate) fn body(out: &mut Vec<u8>, m: &Meta, reply: &Reply) {
    response(out, m, reply, true);
}

fn begin(out: &mut Vec<u8>, sse: &Sse, kind: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: {\"type\":");
    quoted(out, kind);
    out.extend_from_slice(b",\"sequence_number\":");
    num(out, sse.seq.get());
}

/// `,"item_id":..,"output_index":..` (and `"content_index":0` for the message's text).
fn place(out: &mut Vec<u8>, sse: &Sse, block: Block, content: bool) {
    out.extend_from_slice(b",\"item_id\":");
    item_id(out, sse.meta, block);
    out.extend_from_slice(b",\"output_index\":");
    num(out, sse.reply.block_index(block));
    if content {
        out.extend_from_slice(b",\"content_index\":0");
    }
}

fn kind(reply: &Reply, step: Step) -> &'static str {
    match step {
        Step::MessageStart => "response.created",
        Step::InProgress => "response.in_progress",
        Step::BlockStart(_) => "response.output_item.added",
        Step::BlockStop(_) => "response.output_item.done",
        Step::PartStart => "response.content_part.added",
        Step::PartStop => "response.content_part.done",
        Step::Content(_) | Step::Malformed => "response.output_text.delta",
        Step::Thinking(_) => "response.reasoning_summary_text.delta",
        Step::ToolArgs { .. } => "response.function_call_arguments.delta",
        Step::BlockDone(Block::Text) => "response.output_text.done",
        Step::BlockDone(Block::Thinking) => "response.reasoning_summary_text.done",
        Step::BlockDone(Block::Tool(_)) => "response.function_call_arguments.done",
        _ if incomplete(reply) => "response.incomplete",
        _ => "response.completed",
    }
}

/// Appends one stream event for `step`.
pub(crate) fn event(out: &mut Vec<u8>, sse: &Sse, step: Step) {
    let (m, reply) = (sse.meta, sse.reply);
    begin(out, sse, kind(reply, step));
    match step {
        Step::Malformed => {
            out.extend_from_slice(b",\"delta\":\n\n");
            return;
        }
        Step::MessageStart | Step::InProgress => {
            out.extend_from_slice(b",\"response\":");
            response(out, m, reply, false);
        }
        Step::BlockStart(block) | Step::BlockStop(block) => {
            out.extend_from_slice(b",\"output_index\":");
            num(out, reply.block_index(block));
            out.extend_from_slice(b",\"item\":");
            item(out, m, reply, block, matches!(step, Step::BlockStop(_)));
        }
        Step::PartStart | Step::PartStop => {
            place(out, sse, Block::Text, true);
            out.extend_from_slice(b",\"part\":");
            output_text(out, reply, step == Step::PartStop);
        }
        Step::Content(i) => {
            place(out, sse, Block::Text, true);
            super::responses::content_field(out, b",\"delta\":\"tok", i);
        }
        Step::Thinking(i) => {
            place(out, sse, Block::Thinking, false);
            out.extend_from_slice(b",\"summary_index\":0,\"delta\":");
            json_str(out, THINKING[i as usize]);
        }
        Step::ToolArgs { call, piece } => {
            place(out, sse, Block::Tool(call), false);
            out.extend_from_slice(b",\"delta\":");
            let a = reply.arguments(call);
            a.write(out, a.range(piece, reply.arg_pieces(call)), true);
        }
        Step::BlockDone(block) => {
            place(out, sse, block, block == Block::Text);
            match block {
                Block::Text => {
                    out.extend_from_slice(b",\"text\":");
                    text(out, reply);
                }
                Block::Thinking => {
                    out.extend_from_slice(b",\"summary_index\":0,\"text\":");
                    json_str(out, THINKING_TEXT);
                }
                Block::Tool(c) => {
                    out.extend_from_slice(b",\"arguments\":");
                    reply.arguments(c).quoted(out);
                }
            }
        }
        _ => {
            out.extend_from_slice(b",\"response\":");
            response(out, m, reply, true);
        }
    }
    out.extend_from_slice(b"}\n\n");
}

/// `error_after`: an `error` event.
pub(crate) fn error_event(out: &mut Vec<u8>, sse: &Sse, status: u16, message: &str) {
    begin(out, sse, "error");
    out.extend_from_slice(b",\"code\":");
    let code = match status {
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    quoted(out, code);
    out.extend_from_slice(b",\"message\":");
    json_str(out, message);
    out.extend_from_slice(b",\"param\":null}\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::directives::Directives;
    use crate::mock::reply::Plan;
    use crate::mock::request::Body;
    use crate::mock::responses::Api;
    use serde_json::Value;

    fn reply(dirs: &str) -> Reply {
        let mut d = Directives::default();
        d.apply_path_segment(dirs).unwrap();
        let body = r#"{"tools":[{"type":"function","name":"lookup"}]}"#;
        Reply::new(Api::Responses, &d, &Body::parse(body.as_bytes()).unwrap())
    }

    fn stream(r: &Reply, m: &Meta) -> Vec<(String, Value)> {
        let sse = Sse {
            api: Api::Responses,
            meta: m,
            reply: r,
            usage_null: false,
            seq: Default::default(),
        };
        let plan = Plan::new(Api::Responses, r, false, false);
        plan.steps()
            .map(|s| {
                let mut out = Vec::new();
                sse.event(&mut out, s);
                let text = String::from_utf8(out).unwrap();
                let (name, data) = text.split_once("\ndata: ").unwrap();
                let name = name.strip_prefix("event: ").unwrap().to_string();
                (name, serde_json::from_str(data.trim_end()).unwrap())
            })
            .collect()
    }

    #[test]
    fn whole_answer_with_usage() {
        let r = reply("chunks=2,thinking");
        let mut m = Meta::new(4, "gpt-4.1", 400, &r);
        m.report(20, None);
        let mut out = Vec::new();
        body(&mut out, &m, &r);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            (v["id"].as_str(), v["status"].as_str()),
            (Some("resp_mock4"), Some("completed"))
        );
        assert_eq!(v["output"][0]["type"], "reasoning");
        assert_eq!(v["output"][1]["content"][0]["text"], "tok0 tok1 ");
        let u = &v["usage"];
        assert_eq!(u["input_tokens"], 120);
        assert_eq!(u["input_tokens_details"]["cached_tokens"], 20);
        assert_eq!(u["output_tokens"], 5);
        assert_eq!(u["output_tokens_details"]["reasoning_tokens"], 3);
        assert_eq!(u["total_tokens"], 125);

        let r = reply("tools=1,stop_reason=max_tokens");
        let mut out = Vec::new();
        body(&mut out, &Meta::new(5, "m", 40, &r), &r);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], "incomplete");
        assert_eq!(v["incomplete_details"]["reason"], "max_output_tokens");
        let call = &v["output"][0];
        assert_eq!(
            (call["type"].as_str(), call["name"].as_str()),
            (Some("function_call"), Some("lookup"))
        );
        let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(args["city"], "Paris");
    }

    #[test]
    fn stream_events_are_typed_and_numbered() {
        let r = reply("chunks=3");
        let m = Meta::new(1, "m", 40, &r);
        let events = stream(&r, &m);
        let names: Vec<_> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (k, (name, data)) in events.iter().enumerate() {
            assert_eq!(data["type"], name.as_str());
            assert_eq!(data["sequence_number"], k as u64);
        }
        assert_eq!(events[7].1["text"], "tok0 tok1 tok2 ");
        assert_eq!(events[10].1["response"]["usage"]["output_tokens"], 3);

        let r = reply("tools=2,tool_args=100");
        let events = stream(&r, &Meta::new(2, "m", 40, &r));
        let joined: String = events
            .iter()
            .filter(|(n, d)| {
                n == "response.function_call_arguments.delta" && d["output_index"] == 1
            })
            .map(|(_, d)| d["delta"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(joined.len(), 100);
        let done = events
            .iter()
            .find(|(n, d)| n == "response.function_call_arguments.done" && d["output_index"] == 1)
            .unwrap();
        assert_eq!(done.1["arguments"], joined.as_str());
        assert_eq!(done.1["item_id"], "fc_mock2_1");
    }
}
