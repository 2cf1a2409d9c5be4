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

/// The arguments of one tool call as JSON text: `{"city":"Paris","call":<call>}`, or with
/// `tool_args=N` `{"city":"Paris","call":<call>,"pad":"aaa..."}` padded to exactly N bytes. Only
/// the head is stored; the filler is written as it is needed, so a fragment of 256 MiB of
/// arguments costs no more than its own bytes.
pub(crate) struct Arguments {
    /// `{"city":"Paris","call":<call>`, then `,"pad":"` when padded.
    head: [u8; 40],
    head_len: usize,
    /// Filler bytes after the head (padded only).
    fill: u64,
    padded: bool,
}

/// The arguments of call `call`, padded to `size` bytes when that is at least the padded form's
/// minimum (34 bytes); `None` (or less) gives the plain 25 bytes.
pub(crate) fn arguments(call: u8, size: Option<u64>) -> Arguments {
    const PREFIX: &[u8] = br#"{"city":"Paris","call":"#;
    const PAD: &[u8] = br#","pad":""#;
    let mut a = Arguments {
        head: [0; 40],
        head_len: PREFIX.len(),
        fill: 0,
        padded: false,
    };
    a.head[..a.head_len].copy_from_slice(PREFIX);
    let mut itoa = itoa::Buffer::new();
    for &b in itoa.format(call).as_bytes() {
        a.head[a.head_len] = b;
        a.head_len += 1;
    }
    let padded_min = (a.head_len + PAD.len() + 2) as u64;
    if let Some(n) = size.filter(|&n| n >= padded_min) {
        a.head[a.head_len..a.head_len + PAD.len()].copy_from_slice(PAD);
        a.head_len += PAD.len();
        a.fill = n - padded_min;
        a.padded = true;
    }
    a
}

impl Arguments {
    fn tail(&self) -> &'static [u8] {
        if self.padded { b"\"}" } else { b"}" }
    }

    pub fn len(&self) -> u64 {
        self.head_len as u64 + self.fill + self.tail().len() as u64
    }

    /// The byte range of fragment `piece` of `pieces` near-equal fragments; none is empty while
    /// `pieces <= len`.
    pub fn range(&self, piece: u64, pieces: u64) -> (u64, u64) {
        let len = self.len();
        (piece * len / pieces, (piece + 1) * len / pieces)
    }

    /// Appends bytes `from..to` of the arguments: raw JSON, or (`quoted`) as a JSON string.
    pub fn write(&self, out: &mut Vec<u8>, (from, to): (u64, u64), quoted: bool) {
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            for &b in bytes {
                if quoted && b == b'"' {
                    out.push(b'\\');
                }
                out.push(b);
            }
        };
        if quoted {
            out.push(b'"');
        }
        let (head, fill_end) = (self.head_len as u64, self.head_len as u64 + self.fill);
        if from < head {
            put(out, &self.head[from as usize..to.min(head) as usize]);
        }
        let (f0, f1) = (from.max(head), to.min(fill_end));
        if f0 < f1 {
            out.resize(out.len() + (f1 - f0) as usize, b'a');
        }
        if to > fill_end {
            let t0 = from.max(fill_end) - fill_end;
            put(out, &self.tail()[t0 as usize..(to - fill_end) as usize]);
        }
        if quoted {
            out.push(b'"');
        }
    }

    /// The whole arguments as a JSON string.
    pub fn quoted(&self, out: &mut Vec<u8>) {
        self.write(out, (0, self.len()), true);
    }
}

fn call_id(out: &mut Vec<u8>, prefix: &[u8], call: u8) {
    out.push(b'"');
    out.extend_from_slice(prefix);
    num(out, call as u64);
    out.push(b'"');
}

/// Fragment `piece` of call `call`'s arguments, as a JSON string.
fn arg_piece(out: &mut Vec<u8>, reply: &Reply, call: u8, piece: u64) {
    let a = reply.arguments(call);
    a.write(out, a.range(piece, reply.arg_pieces(call)), true);
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
        reply.arguments(c).quoted(out);
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
            arg_piece(out, reply, call, piece);
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
                text(out, reply);
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
                let a = reply.arguments(c);
                a.write(out, (0, a.len()), false);
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
            arg_piece(out, reply, call, piece);
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

    fn raw(a: &Arguments, range: (u64, u64)) -> String {
        let mut out = Vec::new();
        a.write(&mut out, range, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn arguments_split_into_nonempty_pieces() {
        let a = arguments(7, None);
        assert_eq!(raw(&a, (0, a.len())), r#"{"city":"Paris","call":7}"#);
        for pieces in 2..=a.len() {
            let parts: Vec<_> = (0..pieces).map(|p| raw(&a, a.range(p, pieces))).collect();
            assert!(parts.iter().all(|p| !p.is_empty()), "{pieces}");
            assert_eq!(parts.concat(), raw(&a, (0, a.len())));
        }
    }

    #[test]
    fn padded_arguments_are_exact_and_escape_as_strings() {
        assert_eq!(arguments(0, Some(33)).len(), 25, "too small to pad");
        let a = arguments(3, Some(34));
        assert_eq!(
            raw(&a, (0, a.len())),
            r#"{"city":"Paris","call":3,"pad":""}"#
        );
        let a = arguments(3, Some(1000));
        assert_eq!(a.len(), 1000);
        let whole = raw(&a, (0, a.len()));
        let v: serde_json::Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(v["call"], 3);
        assert_eq!(v["pad"].as_str().unwrap().len(), 1000 - 34);
        // Fragments cut anywhere (inside the head, the filler or the tail) join up again, and
        // each one is a valid JSON string of exactly its bytes.
        let pieces = 77;
        let mut joined = String::new();
        for p in 0..pieces {
            let mut q = Vec::new();
            a.write(&mut q, a.range(p, pieces), true);
            let s: String = serde_json::from_slice(&q).unwrap();
            assert_eq!(s, raw(&a, a.range(p, pieces)));
            joined += &s;
        }
        assert_eq!(joined, whole);
    }
}
