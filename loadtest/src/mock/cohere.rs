//! Cohere v2 chat (`POST /v2/chat`) answers: the whole body, and the typed stream events
//! (`message-start`, `content-start`/`-delta`/`-end`, `tool-call-start`/`-delta`/`-end`,
//! `message-end` with the finish reason and usage; no end sentinel). Cohere reports no cached
//! or reasoning tokens: the prompt count is the whole prompt.

use super::reply::{Block, Reply, Step};
use super::responses::{Meta, json_str, num, text};

fn call_id(out: &mut Vec<u8>, call: u8) {
    out.extend_from_slice(b"\"call_mock");
    num(out, call as u64);
    out.push(b'"');
}

fn usage(out: &mut Vec<u8>, m: &Meta) {
    let prompt = m.prompt_tokens.saturating_add(m.cached_tokens);
    for (i, field) in [&b"billed_units"[..], b"tokens"].into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(field);
        out.extend_from_slice(b"\":{\"input_tokens\":");
        num(out, prompt);
        out.extend_from_slice(b",\"output_tokens\":");
        num(out, m.completion_tokens);
        out.push(b'}');
    }
}

/// One tool call, whole.
fn tool_call(out: &mut Vec<u8>, reply: &Reply, c: u8) {
    out.extend_from_slice(b"{\"id\":");
    call_id(out, c);
    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
    json_str(out, reply.tool_name(c));
    out.extend_from_slice(b",\"arguments\":");
    reply.arguments(c).quoted(out);
    out.extend_from_slice(b"}}");
}

/// A complete non-streaming answer.
pub(crate) fn body(out: &mut Vec<u8>, m: &Meta, reply: &Reply) {
    out.extend_from_slice(b"{\"id\":\"mock-");
    num(out, m.id);
    out.extend_from_slice(b"\",\"finish_reason\":\"");
    out.extend_from_slice(reply.stop.cohere().as_bytes());
    out.extend_from_slice(b"\",\"message\":{\"role\":\"assistant\",");
    if reply.calls == 0 {
        out.extend_from_slice(b"\"content\":[{\"type\":\"text\",\"text\":");
        text(out, reply);
        out.extend_from_slice(b"}]");
    } else {
        out.extend_from_slice(b"\"tool_plan\":\"I will call the tools.\",\"tool_calls\":[");
        for c in 0..reply.calls {
            if c > 0 {
                out.push(b',');
            }
            tool_call(out, reply, c);
        }
        out.push(b']');
    }
    out.extend_from_slice(b"},\"usage\":{");
    usage(out, m);
    out.extend_from_slice(b"}}");
}

/// The index of a block among the answer's content or tool calls.
fn index(block: Block) -> u64 {
    match block {
        Block::Tool(c) => c as u64,
        Block::Text | Block::Thinking => 0,
    }
}

/// Appends one stream event (`event:` and `data:` lines) for `step`.
pub(crate) fn event(out: &mut Vec<u8>, m: &Meta, reply: &Reply, step: Step) {
    let name: &[u8] = match step {
        Step::MessageStart => b"message-start",
        Step::BlockStart(Block::Tool(_)) => b"tool-call-start",
        Step::BlockStart(_) => b"content-start",
        Step::Content(_) | Step::Malformed => b"content-delta",
        Step::ToolArgs { .. } => b"tool-call-delta",
        Step::BlockStop(Block::Tool(_)) => b"tool-call-end",
        Step::BlockStop(_) => b"content-end",
        _ => b"message-end",
    };
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(name);
    out.push(b'"');
    match step {
        Step::MessageStart => {
            out.extend_from_slice(b",\"id\":\"mock-");
            num(out, m.id);
            out.extend_from_slice(
                b"\",\"delta\":{\"message\":{\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],\"citations\":[]}}",
            );
        }
        Step::BlockStart(Block::Tool(c)) => {
            out.extend_from_slice(b",\"index\":");
            num(out, c as u64);
            out.extend_from_slice(b",\"delta\":{\"message\":{\"tool_calls\":{\"id\":");
            call_id(out, c);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            json_str(out, reply.tool_name(c));
            out.extend_from_slice(b",\"arguments\":\"\"}}}}");
        }
        Step::BlockStart(_) => out.extend_from_slice(
            b",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}",
        ),
        Step::Content(i) => {
            out.extend_from_slice(
                b",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"tok",
            );
            num(out, i);
            out.extend_from_slice(b" \"}}}");
        }
        Step::ToolArgs { call, piece } => {
            out.extend_from_slice(b",\"index\":");
            num(out, call as u64);
            out.extend_from_slice(
                b",\"delta\":{\"message\":{\"tool_calls\":{\"function\":{\"arguments\":",
            );
            let a = reply.arguments(call);
            a.write(out, a.range(piece, reply.arg_pieces(call)), true);
            out.extend_from_slice(b"}}}}");
        }
        Step::BlockStop(block) => {
            out.extend_from_slice(b",\"index\":");
            num(out, index(block));
        }
        _ => {
            out.extend_from_slice(b",\"delta\":{\"finish_reason\":\"");
            out.extend_from_slice(reply.stop.cohere().as_bytes());
            out.extend_from_slice(b"\",\"usage\":{");
            usage(out, m);
            out.extend_from_slice(b"}}");
        }
    }
    out.extend_from_slice(b"}\n\n");
}
