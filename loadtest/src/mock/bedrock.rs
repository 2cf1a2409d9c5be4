//! Amazon Bedrock Converse answers (`POST /model/{id}/converse` and `/converse-stream`): the
//! whole response (`output.message.content` of text, `reasoningContent` or `toolUse` blocks,
//! `stopReason`, `usage`, `metrics`), and the event stream in AWS event-stream frames
//! (`eventstream.rs`): `messageStart`, `contentBlockStart` (tool use only),
//! `contentBlockDelta`, `contentBlockStop`, `messageStop`, `metadata`. Errors are a status,
//! `{"message":..}` and an `x-amzn-errortype` header; in a stream an exception frame.
//!
//! Usage: `inputTokens` leaves out the cache reads (`cacheReadInputTokens`), as Anthropic
//! counts them; `totalTokens` adds everything.

use super::eventstream;
use super::reply::{Block, Reply, Step};
use super::responses::{Meta, json_str, num, text};
use super::tools::{THINKING, THINKING_TEXT};

/// The `x-amzn-errortype` of an error answer with this status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        500..=599 => "InternalServerException",
        _ => "ValidationException",
    }
}

/// The `:exception-type` of an in-stream error standing for this status.
fn exception_type(status: u16) -> &'static str {
    match status {
        400 => "validationException",
        429 => "throttlingException",
        500 => "internalServerException",
        503 => "serviceUnavailableException",
        _ => "modelStreamErrorException",
    }
}

/// Bedrock's error body: `{"message":..}`.
pub(crate) fn error(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"{\"message\":");
    json_str(out, message);
    out.push(b'}');
}

/// `error_after`: an exception frame.
pub(crate) fn exception(out: &mut Vec<u8>, status: u16, message: &str) {
    let f = eventstream::exception(out, exception_type(status));
    error(out, message);
    eventstream::finish(out, f);
}

fn usage(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(b"\"usage\":{\"inputTokens\":");
    num(out, m.prompt_tokens);
    out.extend_from_slice(b",\"outputTokens\":");
    num(out, m.completion_tokens);
    out.extend_from_slice(b",\"totalTokens\":");
    let total = m.prompt_tokens.saturating_add(m.cached_tokens);
    num(out, total.saturating_add(m.completion_tokens));
    if m.cached_tokens > 0 {
        out.extend_from_slice(b",\"cacheReadInputTokens\":");
        num(out, m.cached_tokens);
    }
    out.extend_from_slice(b"},\"metrics\":{\"latencyMs\":");
    num(out, m.latency_ms);
    out.push(b'}');
}

fn tool_use_id(out: &mut Vec<u8>, c: u8) {
    out.extend_from_slice(b"\"tooluse_mock");
    num(out, c as u64);
    out.push(b'"');
}

fn signature(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(b"\"sig-mock-");
    num(out, m.id);
    out.push(b'"');
}

/// A complete non-streaming answer.
pub(crate) fn body(out: &mut Vec<u8>, m: &Meta, reply: &Reply) {
    out.extend_from_slice(b"{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[");
    for (k, block) in reply.blocks().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        match block {
            Block::Thinking => {
                out.extend_from_slice(b"{\"reasoningContent\":{\"reasoningText\":{\"text\":");
                json_str(out, THINKING_TEXT);
                out.extend_from_slice(b",\"signature\":");
                signature(out, m);
                out.extend_from_slice(b"}}}");
            }
            Block::Text => {
                out.extend_from_slice(b"{\"text\":");
                text(out, reply);
                out.push(b'}');
            }
            Block::Tool(c) => {
                out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
                tool_use_id(out, c);
                out.extend_from_slice(b",\"name\":");
                json_str(out, reply.tool_name(c));
                out.extend_from_slice(b",\"input\":");
                let a = reply.arguments(c);
                a.write(out, (0, a.len()), false);
                out.extend_from_slice(b"}}");
            }
        }
    }
    out.extend_from_slice(b"]}},\"stopReason\":\"");
    out.extend_from_slice(reply.stop.anthropic().as_bytes());
    out.extend_from_slice(b"\",");
    usage(out, m);
    out.push(b'}');
}

fn index(out: &mut Vec<u8>, reply: &Reply, block: Block) {
    out.extend_from_slice(b"\"contentBlockIndex\":");
    num(out, reply.block_index(block));
}

/// Appends one event-stream frame for `step`.
pub(crate) fn event(out: &mut Vec<u8>, m: &Meta, reply: &Reply, step: Step) {
    let kind = match step {
        Step::MessageStart => "messageStart",
        Step::BlockStart(_) => "contentBlockStart",
        Step::BlockStop(_) => "contentBlockStop",
        Step::MessageStop => "messageStop",
        Step::Usage => "metadata",
        _ => "contentBlockDelta",
    };
    let f = eventstream::event(out, kind);
    match step {
        Step::MessageStart => out.extend_from_slice(b"{\"role\":\"assistant\"}"),
        Step::Malformed => out.extend_from_slice(b"{\"delta\":{\"text\":"),
        Step::BlockStart(block) => {
            out.extend_from_slice(b"{\"start\":{\"toolUse\":{\"toolUseId\":");
            let c = match block {
                Block::Tool(c) => c,
                _ => 0,
            };
            tool_use_id(out, c);
            out.extend_from_slice(b",\"name\":");
            json_str(out, reply.tool_name(c));
            out.extend_from_slice(b"}},");
            index(out, reply, block);
            out.push(b'}');
        }
        Step::Content(i) => {
            super::responses::content_field(out, b"{\"delta\":{\"text\":\"tok", i);
            out.extend_from_slice(b"},");
            index(out, reply, Block::Text);
            out.push(b'}');
        }
        Step::Thinking(_) | Step::Signature => {
            out.extend_from_slice(b"{\"delta\":{\"reasoningContent\":{");
            if let Step::Thinking(i) = step {
                out.extend_from_slice(b"\"text\":");
                json_str(out, THINKING[i as usize]);
            } else {
                out.extend_from_slice(b"\"signature\":");
                signature(out, m);
            }
            out.extend_from_slice(b"}},");
            index(out, reply, Block::Thinking);
            out.push(b'}');
        }
        Step::ToolArgs { call, piece } => {
            out.extend_from_slice(b"{\"delta\":{\"toolUse\":{\"input\":");
            let a = reply.arguments(call);
            a.write(out, a.range(piece, reply.arg_pieces(call)), true);
            out.extend_from_slice(b"}},");
            index(out, reply, Block::Tool(call));
            out.push(b'}');
        }
        Step::BlockStop(block) => {
            out.push(b'{');
            index(out, reply, block);
            out.push(b'}');
        }
        Step::MessageStop => {
            out.extend_from_slice(b"{\"stopReason\":\"");
            out.extend_from_slice(reply.stop.anthropic().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        _ => {
            out.push(b'{');
            usage(out, m);
            out.push(b'}');
        }
    }
    eventstream::finish(out, f);
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
        let body = r#"{"toolConfig":{"tools":[{"toolSpec":{"name":"lookup"}}]}}"#;
        Reply::new(Api::Bedrock, &d, &Body::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn whole_answer() {
        let r = reply("tools=2,thinking");
        let mut m = Meta::new(3, "m", 400, &r);
        m.report(50, None);
        m.latency_ms = 12;
        let mut out = Vec::new();
        body(&mut out, &m, &r);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let content = &v["output"]["message"]["content"];
        assert_eq!(
            content[0]["reasoningContent"]["reasoningText"]["text"],
            THINKING_TEXT
        );
        assert_eq!(content[2]["toolUse"]["toolUseId"], "tooluse_mock1");
        assert_eq!(content[2]["toolUse"]["name"], "lookup");
        assert_eq!(content[2]["toolUse"]["input"]["call"], 1);
        assert_eq!(v["stopReason"], "tool_use");
        assert_eq!(v["usage"]["inputTokens"], 100);
        assert_eq!(v["usage"]["cacheReadInputTokens"], 50);
        assert_eq!(v["usage"]["totalTokens"], 150 + r.output_tokens());
        assert_eq!(v["metrics"]["latencyMs"], 12);
    }

    #[test]
    fn stream_frames() {
        let r = reply("tools=1,chunks=3");
        let m = Meta::new(3, "m", 40, &r);
        let plan = Plan::new(Api::Bedrock, &r, false, false);
        let mut out = Vec::new();
        for s in plan.steps() {
            event(&mut out, &m, &r, s);
        }
        exception(&mut out, 429, "slow down");
        let (msgs, rest) = eventstream::decode(&out).unwrap();
        assert_eq!(rest, 0);
        let kinds: Vec<_> = msgs
            .iter()
            .map(|f| {
                f.header(":event-type")
                    .or(f.header(":exception-type"))
                    .unwrap()
            })
            .collect();
        let mut want = vec!["messageStart", "contentBlockStart"];
        want.extend(std::iter::repeat_n(
            "contentBlockDelta",
            r.arg_pieces(0) as usize,
        ));
        want.extend([
            "contentBlockStop",
            "messageStop",
            "metadata",
            "throttlingException",
        ]);
        assert_eq!(kinds, want);
        let json: Vec<Value> = msgs
            .iter()
            .map(|f| serde_json::from_slice(&f.payload).unwrap())
            .collect();
        assert_eq!(json[1]["start"]["toolUse"]["name"], "lookup");
        let input: String = json[2..2 + r.arg_pieces(0) as usize]
            .iter()
            .map(|d| d["delta"]["toolUse"]["input"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&input).unwrap()["city"],
            "Paris"
        );
        assert_eq!(json[json.len() - 3]["stopReason"], "tool_use");
        assert_eq!(
            json[json.len() - 2]["usage"]["outputTokens"],
            r.output_tokens()
        );
        assert_eq!(
            msgs.last().unwrap().header(":message-type"),
            Some("exception")
        );
        assert_eq!(error_type(429), "ThrottlingException");
    }
}
