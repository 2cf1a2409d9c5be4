//! Byte builders for tool calls and extended thinking in both protocols: OpenAI `tool_calls` and
//! `reasoning_content` (whole, and as stream deltas the way DeepSeek and vLLM send reasoning),
//! and Anthropic content blocks (`thinking`, `text`, `tool_use`) with their start and delta
//! events. Like `responses.rs` they append to a caller-owned buffer and allocate nothing; the
//! same reply always gives the same bytes, so tests can predict every field.

use super::reply::{Block, Reply, Step};
use super::responses::{Meta, json_str, num, text};

/// The reasoning, in the pieces a stream sends it in.
pub(crate) const THINKING: [&str; 3] = ["Let me ", "think step ", "by step."];
/// The pieces of [`THINKING`] joined.
pub(crate) const THINKING_TEXT: &str = "Let me think step by step.";
/// The `stop_sequence` reported when `stop_reason=stop_sequence`.
pub(crate) const STOP_SEQUENCE: &str = "###";

/// The arguments of one tool call as JSON text: `{"city":"Paris","call":<call>}`.
pub(crate) struct Arguments {
    buf: [u8; 32],
    len: usize,
}

pub(crate) fn arguments(call: u8) -> Arguments {
    const PREFIX: &[u8] = br#"{"city":"Paris","call":"#;
    let mut a = Arguments {
        buf: [0; 32],
        len: PREFIX.len(),
    };
    a.buf[..a.len].copy_from_slice(PREFIX);
    let mut itoa = itoa::Buffer::new();
    for &b in itoa.format(call).as_bytes().iter().chain(b"}") {
        a.buf[a.len] = b;
        a.len += 1;
    }
    a
}

impl Arguments {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("arguments are ASCII")
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Fragment `piece` of `pieces` near-equal fragments; none is empty while `pieces <= len`.
    pub fn piece(&self, piece: u64, pieces: u64) -> &str {
        let len = self.len as u64;
        let (from, to) = (piece * len / pieces, (piece + 1) * len / pieces);
        &self.as_str()[from as usize..to as usize]
    }
}

fn call_id(out: &mut Vec<u8>, prefix: &[u8], call: u8) {
    out.push(b'"');
    out.extend_from_slice(prefix);
    num(out, call as u64);
    out.push(b'"');
}

fn signature(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(b"\"sig-mock-");
    num(out, m.id);
    out.push(b'"');
}

// === OpenAI ===

/// `"reasoning_content":"..."` of a non-stream message.
pub(crate) fn openai_reasoning(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\"reasoning_content\":");
    json_str(out, THINKING_TEXT);
}

/// `"tool_calls":[...]` of a non-stream message.
pub(crate) fn openai_tool_calls(out: &mut Vec<u8>, reply: &Reply) {
    out.extend_from_slice(b"\"tool_calls\":[");
    for c in 0..reply.calls {
        if c > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        call_id(out, b"call_mock", c);
        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        json_str(out, reply.tool_name(c));
        out.extend_from_slice(b",\"arguments\":");
        json_str(out, arguments(c).as_str());
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
}

/// The `delta` fields of a reasoning or tool-call chunk. The first chunk of a call names it
/// with empty arguments; the fragments that follow carry only `index` and `arguments`.
pub(crate) fn openai_delta(out: &mut Vec<u8>, reply: &Reply, step: Step) {
    match step {
        Step::Thinking(i) => {
            out.extend_from_slice(b"\"reasoning_content\":");
            json_str(out, THINKING[i as usize]);
        }
        Step::ToolStart(c) => {
            out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
            num(out, c as u64);
            out.extend_from_slice(b",\"id\":");
            call_id(out, b"call_mock", c);
            out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
            json_str(out, reply.tool_name(c));
            out.extend_from_slice(b",\"arguments\":\"\"}}]");
        }
        Step::ToolArgs { call, piece } => {
            out.extend_from_slice(b"\"tool_calls\":[{\"index\":");
            num(out, call as u64);
            out.extend_from_slice(b",\"function\":{\"arguments\":");
            json_str(out, arguments(call).piece(piece, reply.arg_pieces(call)));
            out.extend_from_slice(b"}}]");
        }
        _ => {}
    }
}

// === Anthropic ===

/// A content block: complete (`full`, in a JSON body) or empty, as `content_block_start`
/// announces it.
pub(crate) fn anthropic_block(
    out: &mut Vec<u8>,
    reply: &Reply,
    m: &Meta,
    block: Block,
    full: bool,
) {
    match block {
        Block::Thinking => {
            out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
            if full {
                json_str(out, THINKING_TEXT);
                out.extend_from_slice(b",\"signature\":");
                signature(out, m);
            } else {
                out.extend_from_slice(b"\"\",\"signature\":\"\"");
            }
        }
        Block::Text => {
            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
            if full {
                text(out, reply.chunks);
            } else {
                out.extend_from_slice(b"\"\"");
            }
        }
        Block::Tool(c) => {
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            call_id(out, b"toolu_mock", c);
            out.extend_from_slice(b",\"name\":");
            json_str(out, reply.tool_name(c));
            out.extend_from_slice(b",\"input\":");
            if full {
                out.extend_from_slice(arguments(c).as_str().as_bytes());
            } else {
                out.extend_from_slice(b"{}");
            }
        }
    }
    out.push(b'}');
}

/// The `data` of a `content_block_delta` event for reasoning, its signature or a fragment of a
/// tool call's input.
pub(crate) fn anthropic_delta(out: &mut Vec<u8>, reply: &Reply, m: &Meta, step: Step) {
    let block = match step {
        Step::ToolArgs { call, .. } => Block::Tool(call),
        _ => Block::Thinking,
    };
    out.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
    num(out, reply.block_index(block));
    out.extend_from_slice(b",\"delta\":{\"type\":");
    match step {
        Step::Thinking(i) => {
            out.extend_from_slice(b"\"thinking_delta\",\"thinking\":");
            json_str(out, THINKING[i as usize]);
        }
        Step::Signature => {
            out.extend_from_slice(b"\"signature_delta\",\"signature\":");
            signature(out, m);
        }
        Step::ToolArgs { call, piece } => {
            out.extend_from_slice(b"\"input_json_delta\",\"partial_json\":");
            json_str(out, arguments(call).piece(piece, reply.arg_pieces(call)));
        }
        _ => unreachable!("not a thinking or tool delta: {step:?}"),
    }
    out.extend_from_slice(b"}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinking_pieces_join() {
        assert_eq!(THINKING.concat(), THINKING_TEXT);
    }

    #[test]
    fn arguments_split_into_nonempty_pieces() {
        let a = arguments(7);
        assert_eq!(a.as_str(), r#"{"city":"Paris","call":7}"#);
        for pieces in 2..=a.len() as u64 {
            let parts: Vec<_> = (0..pieces).map(|p| a.piece(p, pieces)).collect();
            assert!(parts.iter().all(|p| !p.is_empty()), "{pieces}");
            assert_eq!(parts.concat(), a.as_str());
        }
    }
}
