//! What the assistant says in one answer, decided once from the directives and the request body:
//! text or tool calls, reasoning first or not, how it ends, how many tokens that is, and in which
//! order an SSE response says it ([`Plan`]). The byte builders (`responses.rs`, `tools.rs`) read
//! a `Reply`; they never look at directives or the request.
//!
//! Invariants: a reply has text or tool calls, never both; Anthropic content blocks are numbered
//! from 0 in [`Reply::blocks`] order (thinking first when present); a plan's events are exactly
//! those of its reply, so the JSON and SSE forms of one answer agree.

use super::directives::{Directives, MAX_BYTES, MAX_TOOLS, StopReason};
use super::request::Body;
use super::responses::Api;
use super::tools::{self, THINKING};

/// Upper bound on `tool_args`, so that even `tools=8` keeps a JSON answer within [`MAX_BYTES`].
pub(crate) const MAX_ARGS: u64 = MAX_BYTES / MAX_TOOLS as u64;

/// The tool name used when the request declares no tools.
pub(crate) const DEFAULT_TOOL: &str = "get_weather";

/// Bytes of tool-call arguments per SSE fragment under `tool_args`: small, so that a gateway
/// translating the stream has many deltas to queue.
pub(crate) const ARG_PIECE: u64 = 16;

/// The content of one answer.
pub(crate) struct Reply {
    /// Text pieces (`tokN `) when there are no tool calls.
    pub chunks: u64,
    /// Filler bytes (`a`) after the text pieces of a JSON answer (`huge_body`); the caller
    /// sizes it, since only it knows the rest of the body.
    pub pad: u64,
    /// `tool_args`: the size of each call's arguments, sent in [`ARG_PIECE`]-byte fragments.
    args: Option<u64>,
    pub thinking: bool,
    /// Tool calls instead of text (0..=`MAX_TOOLS`).
    pub calls: u8,
    /// Tool names declared by the request, cycled through by the calls.
    names: Vec<String>,
    pub stop: StopReason,
}

/// One Anthropic content block (and the matching part of an OpenAI message).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Block {
    Thinking,
    Text,
    Tool(u8),
}

impl Reply {
    /// A plain text answer (what every non-chat route gets).
    pub fn text(chunks: u64) -> Reply {
        Reply {
            chunks,
            pad: 0,
            args: None,
            thinking: false,
            calls: 0,
            names: Vec::new(),
            stop: StopReason::EndTurn,
        }
    }

    /// The answer for an API request. Legacy completions have no tools nor reasoning, but
    /// honour `stop_reason`; elsewhere `tool_args` implies at least one call.
    pub fn new(api: Api, d: &Directives, body: &Body) -> Reply {
        let tools = if d.tool_args.is_some() {
            d.tools.max(1)
        } else {
            d.tools
        };
        let (calls, implied) = match api {
            Api::Chat => (tools, body.reasoning_requested()),
            Api::Messages => (tools, body.thinking_enabled()),
            Api::Cohere => (tools, false),
            Api::Gemini => (tools, body.gemini_thoughts()),
            Api::Bedrock => (tools, body.bedrock_reasoning()),
            Api::Responses => (tools, body.responses_reasoning()),
            Api::Completion => (0, false),
        };
        // Cohere's chat has no reasoning to stream.
        let thinking =
            !matches!(api, Api::Completion | Api::Cohere) && d.thinking.unwrap_or(implied);
        let stop = match d.stop_reason {
            Some(s) => s,
            None if calls > 0 => StopReason::ToolUse,
            None => StopReason::EndTurn,
        };
        Reply {
            chunks: d.chunks,
            pad: 0,
            args: d.tool_args.map(|n| n.min(MAX_ARGS)),
            thinking,
            calls: calls.min(MAX_TOOLS),
            names: if calls > 0 {
                body.tool_names()
            } else {
                Vec::new()
            },
            stop,
        }
    }

    pub fn tool_name(&self, call: u8) -> &str {
        if self.names.is_empty() {
            DEFAULT_TOOL
        } else {
            &self.names[call as usize % self.names.len()]
        }
    }

    /// The content blocks in order: thinking, then the text or each tool call.
    pub fn blocks(&self) -> impl Iterator<Item = Block> + use<> {
        let calls = self.calls;
        let thinking = self.thinking.then_some(Block::Thinking);
        let body = (0..calls.max(1)).map(move |c| {
            if calls == 0 {
                Block::Text
            } else {
                Block::Tool(c)
            }
        });
        thinking.into_iter().chain(body)
    }

    /// The Anthropic `index` of `block`.
    pub fn block_index(&self, block: Block) -> u64 {
        let after_thinking = self.thinking as u64;
        match block {
            Block::Thinking => 0,
            Block::Text => after_thinking,
            Block::Tool(c) => after_thinking + c as u64,
        }
    }

    /// The arguments of call `call`.
    pub fn arguments(&self, call: u8) -> tools::Arguments {
        tools::arguments(call, self.args)
    }

    /// SSE fragments the arguments of call `call` are split into: `chunks` (or, under
    /// `tool_args`, one per [`ARG_PIECE`] bytes), at least 2 (a client must reassemble) and at
    /// most one per byte (none empty).
    pub fn arg_pieces(&self, call: u8) -> u64 {
        let len = self.arguments(call).len();
        let want = match self.args {
            Some(_) => len.div_ceil(ARG_PIECE),
            None => self.chunks,
        };
        want.clamp(2, len)
    }

    pub fn reasoning_tokens(&self) -> u64 {
        if self.thinking {
            THINKING.len() as u64
        } else {
            0
        }
    }

    /// Output tokens: one per content delta (reasoning pieces, then text pieces or argument
    /// fragments), the same for the JSON and the SSE form.
    pub fn output_tokens(&self) -> u64 {
        let body = if self.calls == 0 {
            self.chunks
        } else {
            (0..self.calls).map(|c| self.arg_pieces(c)).sum()
        };
        self.reasoning_tokens() + body
    }
}

// === impl Plan ===

/// One event of an SSE stream.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Step {
    /// OpenAI: the first chunk, with the role.
    Role,
    Malformed,
    /// Text piece `i`.
    Content(u64),
    /// Reasoning piece `i` (OpenAI `reasoning_content`, Anthropic `thinking_delta`).
    Thinking(u8),
    /// Anthropic: the thinking block's `signature_delta`.
    Signature,
    /// OpenAI: the first chunk of tool call `c` (id, type, name, empty arguments).
    ToolStart(u8),
    /// Fragment `piece` of tool call `call`'s arguments.
    ToolArgs {
        call: u8,
        piece: u64,
    },
    Finish,
    Usage,
    Done,
    MessageStart,
    BlockStart(Block),
    Ping,
    BlockStop(Block),
    MessageDelta,
    MessageStop,
    /// Responses API: `response.in_progress`.
    InProgress,
    /// Responses API: the text part of the message item opens (`content_part.added`).
    PartStart,
    /// Responses API: the whole text (`output_text.done`), the reasoning summary
    /// (`reasoning_summary_text.done`) or a call's arguments (`function_call_arguments.done`).
    BlockDone(Block),
    /// Responses API: the text part closes (`content_part.done`).
    PartStop,
}

/// A run of events: one step, or a counted run of pieces.
#[derive(Clone, Copy, Debug)]
enum Seg {
    One(Step),
    Thinking,
    Text(u64),
    Args(u8),
}

/// Worst case is the Responses API: 3 before the first item, a reasoning item (4), a
/// function call (4 each) or the message (6), and 1 after; with room to spare.
const MAX_SEGS: usize = 4 + 4 + 4 * MAX_TOOLS as usize + 6 + 2;

/// The sequence of events of one SSE response; runs of pieces are counted, not stored, so
/// `chunks=1000000` costs nothing.
pub(crate) struct Plan {
    segs: [Seg; MAX_SEGS],
    n: usize,
    /// Argument fragments per call.
    pieces: [u64; MAX_TOOLS as usize],
}

impl Plan {
    pub fn new(api: Api, reply: &Reply, include_usage: bool, malformed: bool) -> Plan {
        let mut p = Plan {
            segs: [Seg::One(Step::Done); MAX_SEGS],
            n: 0,
            pieces: [0; MAX_TOOLS as usize],
        };
        for c in 0..reply.calls {
            p.pieces[c as usize] = reply.arg_pieces(c);
        }
        match api {
            Api::Messages => p.anthropic(reply, malformed),
            Api::Cohere => p.cohere(reply),
            Api::Gemini => p.gemini(reply, malformed),
            Api::Bedrock => p.bedrock(reply, malformed),
            Api::Responses => p.responses(reply, malformed),
            Api::Chat | Api::Completion => {
                if api == Api::Chat {
                    p.push(Seg::One(Step::Role));
                }
                if malformed {
                    p.push(Seg::One(Step::Malformed));
                }
                if reply.thinking {
                    p.push(Seg::Thinking);
                }
                if reply.calls == 0 {
                    p.push(Seg::Text(reply.chunks));
                }
                for c in 0..reply.calls {
                    p.push(Seg::One(Step::ToolStart(c)));
                    p.push(Seg::Args(c));
                }
                p.push(Seg::One(Step::Finish));
                if include_usage {
                    p.push(Seg::One(Step::Usage));
                }
                p.push(Seg::One(Step::Done));
            }
        }
        p
    }

    /// `message-start`, each block's start, pieces and end, `message-end` (no sentinel).
    fn cohere(&mut self, reply: &Reply) {
        self.push(Seg::One(Step::MessageStart));
        for block in reply.blocks() {
            self.push(Seg::One(Step::BlockStart(block)));
            match block {
                Block::Text => self.push(Seg::Text(reply.chunks)),
                Block::Tool(c) => self.push(Seg::Args(c)),
                Block::Thinking => {}
            }
            self.push(Seg::One(Step::BlockStop(block)));
        }
        self.push(Seg::One(Step::MessageDelta));
    }

    /// Gemini: a chunk per reasoning or text piece, each function call whole in one chunk,
    /// then a last chunk with the finish reason and usage (no sentinel).
    fn gemini(&mut self, reply: &Reply, malformed: bool) {
        if malformed {
            self.push(Seg::One(Step::Malformed));
        }
        if reply.thinking {
            self.push(Seg::Thinking);
        }
        if reply.calls == 0 {
            self.push(Seg::Text(reply.chunks));
        }
        for c in 0..reply.calls {
            self.push(Seg::One(Step::ToolStart(c)));
        }
        self.push(Seg::One(Step::Finish));
    }

    /// Bedrock ConverseStream: `messageStart`; per block a `contentBlockStart` (tool use
    /// only), its deltas and `contentBlockStop`; `messageStop`; `metadata` with the usage.
    fn bedrock(&mut self, reply: &Reply, malformed: bool) {
        self.push(Seg::One(Step::MessageStart));
        if malformed {
            self.push(Seg::One(Step::Malformed));
        }
        for block in reply.blocks() {
            match block {
                Block::Thinking => {
                    self.push(Seg::Thinking);
                    self.push(Seg::One(Step::Signature));
                }
                Block::Text => self.push(Seg::Text(reply.chunks)),
                Block::Tool(c) => {
                    self.push(Seg::One(Step::BlockStart(block)));
                    self.push(Seg::Args(c));
                }
            }
            self.push(Seg::One(Step::BlockStop(block)));
        }
        self.push(Seg::One(Step::MessageStop));
        self.push(Seg::One(Step::Usage));
    }

    /// The Responses API: `response.created`, `.in_progress`; per output item its `added`,
    /// deltas, `done` (and for the message its content part's); `response.completed`.
    fn responses(&mut self, reply: &Reply, malformed: bool) {
        self.push(Seg::One(Step::MessageStart));
        self.push(Seg::One(Step::InProgress));
        if malformed {
            self.push(Seg::One(Step::Malformed));
        }
        for block in reply.blocks() {
            self.push(Seg::One(Step::BlockStart(block)));
            match block {
                Block::Thinking => self.push(Seg::Thinking),
                Block::Text => {
                    self.push(Seg::One(Step::PartStart));
                    self.push(Seg::Text(reply.chunks));
                }
                Block::Tool(c) => self.push(Seg::Args(c)),
            }
            self.push(Seg::One(Step::BlockDone(block)));
            if block == Block::Text {
                self.push(Seg::One(Step::PartStop));
            }
            self.push(Seg::One(Step::BlockStop(block)));
        }
        self.push(Seg::One(Step::MessageStop));
    }

    fn anthropic(&mut self, reply: &Reply, malformed: bool) {
        self.push(Seg::One(Step::MessageStart));
        for (k, block) in reply.blocks().enumerate() {
            self.push(Seg::One(Step::BlockStart(block)));
            if k == 0 {
                self.push(Seg::One(Step::Ping));
                if malformed {
                    self.push(Seg::One(Step::Malformed));
                }
            }
            match block {
                Block::Thinking => {
                    self.push(Seg::Thinking);
                    self.push(Seg::One(Step::Signature));
                }
                Block::Text => self.push(Seg::Text(reply.chunks)),
                Block::Tool(c) => self.push(Seg::Args(c)),
            }
            self.push(Seg::One(Step::BlockStop(block)));
        }
        self.push(Seg::One(Step::MessageDelta));
        self.push(Seg::One(Step::MessageStop));
    }

    fn push(&mut self, s: Seg) {
        self.segs[self.n] = s;
        self.n += 1;
    }

    fn seg_len(&self, s: Seg) -> u64 {
        match s {
            Seg::One(_) => 1,
            Seg::Thinking => THINKING.len() as u64,
            Seg::Text(n) => n,
            Seg::Args(c) => self.pieces[c as usize],
        }
    }

    /// The number of events.
    pub fn len(&self) -> u64 {
        self.segs[..self.n].iter().map(|&s| self.seg_len(s)).sum()
    }

    /// The events in order.
    pub fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        self.segs[..self.n].iter().flat_map(move |&s| {
            (0..self.seg_len(s)).map(move |i| match s {
                Seg::One(step) => step,
                Seg::Thinking => Step::Thinking(i as u8),
                Seg::Text(_) => Step::Content(i),
                Seg::Args(call) => Step::ToolArgs { call, piece: i },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(api: Api, directives: &str, body: &str) -> Reply {
        let mut d = Directives::default();
        d.apply_path_segment(directives).unwrap();
        Reply::new(api, &d, &Body::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn names_cycle_and_default() {
        let body = r#"{"tools":[{"name":"a"},{"name":"b"}]}"#;
        let r = reply(Api::Messages, "tools=3", body);
        let names: Vec<_> = (0..3).map(|c| r.tool_name(c)).collect();
        assert_eq!(names, ["a", "b", "a"]);
        assert_eq!(r.stop, StopReason::ToolUse);
        assert_eq!(reply(Api::Chat, "tools=1", "{}").tool_name(0), DEFAULT_TOOL);
        let r = reply(
            Api::Completion,
            "tools=2,thinking,stop_reason=max_tokens",
            "{}",
        );
        assert_eq!(
            (r.calls, r.thinking, r.stop),
            (0, false, StopReason::MaxTokens)
        );
    }

    #[test]
    fn thinking_is_implied_per_protocol() {
        let both = r#"{"thinking":{"type":"enabled"},"reasoning_effort":"high"}"#;
        assert!(reply(Api::Messages, "", r#"{"thinking":{"type":"enabled"}}"#).thinking);
        assert!(!reply(Api::Messages, "", r#"{"reasoning_effort":"high"}"#).thinking);
        assert!(reply(Api::Chat, "", r#"{"reasoning_effort":"high"}"#).thinking);
        assert!(!reply(Api::Chat, "", r#"{"thinking":{"type":"enabled"}}"#).thinking);
        assert!(!reply(Api::Messages, "thinking=0", both).thinking);
        assert!(reply(Api::Chat, "thinking", "{}").thinking);
    }

    #[test]
    fn blocks_are_numbered_from_zero() {
        let r = reply(Api::Messages, "tools=2,thinking", "{}");
        let blocks: Vec<_> = r.blocks().collect();
        assert_eq!(blocks, [Block::Thinking, Block::Tool(0), Block::Tool(1)]);
        let idx: Vec<_> = blocks.iter().map(|&b| r.block_index(b)).collect();
        assert_eq!(idx, [0, 1, 2]);
        let r = reply(Api::Messages, "", "{}");
        assert_eq!(r.blocks().collect::<Vec<_>>(), [Block::Text]);
        assert_eq!(r.block_index(Block::Text), 0);
    }

    #[test]
    fn plan_len_matches_steps_and_tokens() {
        for api in [
            Api::Chat,
            Api::Completion,
            Api::Messages,
            Api::Bedrock,
            Api::Responses,
        ] {
            for dirs in [
                "",
                "chunks=0",
                "tools=8,thinking",
                "tools=1,chunks=1",
                "thinking",
            ] {
                let r = reply(api, dirs, "{}");
                let p = Plan::new(api, &r, true, true);
                let steps: Vec<_> = p.steps().collect();
                assert_eq!(steps.len() as u64, p.len(), "{api:?} {dirs}");
                let deltas = steps
                    .iter()
                    .filter(|s| {
                        matches!(
                            s,
                            Step::Content(_) | Step::Thinking(_) | Step::ToolArgs { .. }
                        )
                    })
                    .count();
                assert_eq!(deltas as u64, r.output_tokens(), "{api:?} {dirs}");
            }
        }
        let r = reply(Api::Chat, "tools=1,chunks=1000000", "{}");
        assert_eq!(r.arg_pieces(0), r.arguments(0).len());
    }

    #[test]
    fn tool_args_imply_a_call_in_small_fragments() {
        let r = reply(Api::Messages, "tool_args=1000", "{}");
        assert_eq!((r.calls, r.stop), (1, StopReason::ToolUse));
        assert_eq!(r.arguments(0).len(), 1000);
        assert_eq!(r.arg_pieces(0), 1000u64.div_ceil(ARG_PIECE));
        assert_eq!(r.output_tokens(), r.arg_pieces(0));
        let r = reply(Api::Chat, "tool_args=300000000,tools=3", "{}");
        assert_eq!((r.calls, r.arguments(2).len()), (3, MAX_ARGS));
        assert_eq!(reply(Api::Completion, "tool_args=100", "{}").calls, 0);
    }
}
