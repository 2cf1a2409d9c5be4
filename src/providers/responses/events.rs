//! The Responses API's typed stream, written for a client: `response.created` and
//! `.in_progress`, then per output item `output_item.added`, its content or summary part, the
//! text, summary and argument deltas and their `.done` events, `output_item.done`, and last
//! `response.completed` (or `.incomplete`) with the whole response and its usage. Every event
//! names its type and a `sequence_number` counting from 0. Function calls stay open until
//! the end, so argument deltas of calls that interleave still reach the right item.

use super::ingress::{Item, item_id, output_text, response_id, write_item, write_response};
use crate::error::GatewayError;
use crate::json::{push_str, push_u64};
use crate::providers::Usage;
use crate::providers::adapter::StreamEncode;
use crate::providers::canonical::{Event, Finish, Stamp};

#[derive(Clone, Copy, PartialEq)]
enum Open {
    None,
    Message(usize),
    Reasoning(usize),
}

pub struct StreamEncoder {
    rid: String,
    model: String,
    created: u64,
    seq: u64,
    items: Vec<Item>,
    open: Open,
    /// Output index of each tool call, by its number.
    calls: Vec<usize>,
    finish: Option<Finish>,
    usage: Usage,
    started: bool,
}

impl StreamEncoder {
    pub fn new(stamp: &Stamp<'_>) -> StreamEncoder {
        StreamEncoder {
            rid: stamp.answer_id("", "resp_").into_owned(),
            model: stamp.model.to_owned(),
            created: stamp.created,
            seq: 0,
            items: Vec::new(),
            open: Open::None,
            calls: Vec::new(),
            finish: None,
            usage: Usage::default(),
            started: false,
        }
    }

    /// `event: {kind}` with data `{"type":kind,"sequence_number":n,…}`; `body` writes the
    /// rest of the members, each after a comma.
    fn event(&mut self, out: &mut Vec<u8>, kind: &str, body: impl FnOnce(&Self, &mut Vec<u8>)) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        push_u64(out, self.seq);
        self.seq += 1;
        body(self, out);
        out.extend_from_slice(b"}\n\n");
    }

    fn where_(out: &mut Vec<u8>, item: &str, n: usize) {
        out.extend_from_slice(b",\"item_id\":");
        push_str(out, item);
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, n as u64);
    }

    fn start(&mut self, out: &mut Vec<u8>, id: &str) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        if !id.is_empty() {
            self.rid = response_id(id);
        }
        for kind in ["response.created", "response.in_progress"] {
            self.event(out, kind, |s, out| {
                out.extend_from_slice(b",\"response\":");
                write_response(out, &s.rid, &s.model, s.created, &[], None, None);
            });
        }
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        match std::mem::replace(&mut self.open, Open::None) {
            Open::None => {}
            Open::Message(n) => {
                let id = item_id("msg_", &self.rid, n);
                self.event(out, "response.output_text.done", |s, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(b",\"content_index\":0,\"text\":");
                    if let Item::Message { text } = &s.items[n] {
                        push_str(out, text);
                    }
                    out.extend_from_slice(b",\"logprobs\":[]");
                });
                self.event(out, "response.content_part.done", |s, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(b",\"content_index\":0,\"part\":");
                    if let Item::Message { text } = &s.items[n] {
                        output_text(out, text);
                    }
                });
                self.item_done(out, n);
            }
            Open::Reasoning(n) => {
                let id = item_id("rs_", &self.rid, n);
                self.event(out, "response.reasoning_summary_text.done", |s, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(b",\"summary_index\":0,\"text\":");
                    if let Item::Reasoning { text, .. } = &s.items[n] {
                        push_str(out, text);
                    }
                });
                self.event(out, "response.reasoning_summary_part.done", |s, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(
                        b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":",
                    );
                    if let Item::Reasoning { text, .. } = &s.items[n] {
                        push_str(out, text);
                    }
                    out.push(b'}');
                });
                self.item_done(out, n);
            }
        }
    }

    fn item_done(&mut self, out: &mut Vec<u8>, n: usize) {
        self.event(out, "response.output_item.done", |s, out| {
            out.extend_from_slice(b",\"output_index\":");
            push_u64(out, n as u64);
            out.extend_from_slice(b",\"item\":");
            write_item(out, &s.rid, n, &s.items[n], "completed");
        });
    }

    fn item_added(&mut self, out: &mut Vec<u8>, n: usize) {
        self.event(out, "response.output_item.added", |s, out| {
            out.extend_from_slice(b",\"output_index\":");
            push_u64(out, n as u64);
            out.extend_from_slice(b",\"item\":");
            match &s.items[n] {
                Item::Message { .. } => {
                    out.extend_from_slice(b"{\"type\":\"message\",\"id\":");
                    push_str(out, &item_id("msg_", &s.rid, n));
                    out.extend_from_slice(
                        b",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}",
                    );
                }
                item => write_item(out, &s.rid, n, item, "in_progress"),
            }
        });
    }

    fn text(&mut self, out: &mut Vec<u8>, t: &str) {
        let n = match self.open {
            Open::Message(n) => n,
            _ => {
                self.close_open(out);
                let n = self.items.len();
                self.items.push(Item::Message {
                    text: String::new(),
                });
                self.open = Open::Message(n);
                self.item_added(out, n);
                let id = item_id("msg_", &self.rid, n);
                self.event(out, "response.content_part.added", |_, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(b",\"content_index\":0,\"part\":");
                    output_text(out, "");
                });
                n
            }
        };
        if let Item::Message { text } = &mut self.items[n] {
            text.push_str(t);
        }
        let id = item_id("msg_", &self.rid, n);
        self.event(out, "response.output_text.delta", |_, out| {
            Self::where_(out, &id, n);
            out.extend_from_slice(b",\"content_index\":0,\"delta\":");
            push_str(out, t);
            out.extend_from_slice(b",\"logprobs\":[]");
        });
    }

    fn thinking(&mut self, out: &mut Vec<u8>, t: &str) {
        let n = match self.open {
            Open::Reasoning(n) => n,
            _ => {
                self.close_open(out);
                let n = self.items.len();
                self.items.push(Item::Reasoning {
                    text: String::new(),
                    encrypted: None,
                });
                self.open = Open::Reasoning(n);
                self.item_added(out, n);
                let id = item_id("rs_", &self.rid, n);
                self.event(out, "response.reasoning_summary_part.added", |_, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(
                        b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}",
                    );
                });
                n
            }
        };
        if let Item::Reasoning { text, .. } = &mut self.items[n] {
            text.push_str(t);
        }
        let id = item_id("rs_", &self.rid, n);
        self.event(out, "response.reasoning_summary_text.delta", |_, out| {
            Self::where_(out, &id, n);
            out.extend_from_slice(b",\"summary_index\":0,\"delta\":");
            push_str(out, t);
        });
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.close_open(out);
        for c in 0..self.calls.len() {
            let n = self.calls[c];
            let id = item_id("fc_", &self.rid, n);
            self.event(out, "response.function_call_arguments.done", |s, out| {
                Self::where_(out, &id, n);
                out.extend_from_slice(b",\"arguments\":");
                if let Item::Call { arguments, .. } = &s.items[n] {
                    push_str(out, arguments);
                }
            });
            self.item_done(out, n);
        }
        let finish = self.finish.unwrap_or(Finish::EndTurn);
        let kind = match finish {
            Finish::Length | Finish::ContentFilter => "response.incomplete",
            _ => "response.completed",
        };
        self.event(out, kind, |s, out| {
            out.extend_from_slice(b",\"response\":");
            write_response(
                out,
                &s.rid,
                &s.model,
                s.created,
                &s.items,
                Some(finish),
                Some(&s.usage),
            );
        });
    }

    pub fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        if let Event::Start { id, model, usage } = ev {
            self.usage = *usage;
            if !self.started && !model.is_empty() {
                self.model = model.to_string();
            }
            self.start(out, id);
            return;
        }
        self.start(out, "");
        match ev {
            Event::Text(t) if !t.is_empty() => self.text(out, t),
            Event::Thinking(t) if !t.is_empty() => self.thinking(out, t),
            Event::RedactedThinking(e) => {
                self.close_open(out);
                let n = self.items.len();
                self.items.push(Item::Reasoning {
                    text: String::new(),
                    encrypted: Some(e.to_string()),
                });
                self.item_added(out, n);
                self.item_done(out, n);
            }
            Event::ToolCall { index, id, name } => {
                self.close_open(out);
                let n = self.items.len();
                self.items.push(Item::Call {
                    call_id: id.to_string(),
                    name: name.to_string(),
                    arguments: String::new(),
                });
                let i = *index as usize;
                if self.calls.len() <= i {
                    self.calls.resize(i + 1, n);
                }
                self.calls[i] = n;
                self.item_added(out, n);
            }
            Event::ToolArguments { index, fragment } => {
                let Some(&n) = self.calls.get(*index as usize) else {
                    return;
                };
                if let Item::Call { arguments, .. } = &mut self.items[n] {
                    arguments.push_str(fragment);
                }
                let id = item_id("fc_", &self.rid, n);
                self.event(out, "response.function_call_arguments.delta", |_, out| {
                    Self::where_(out, &id, n);
                    out.extend_from_slice(b",\"delta\":");
                    push_str(out, fragment);
                });
            }
            Event::Finish { reason, .. } => self.finish = Some(*reason),
            Event::Usage(u) => self.usage = *u,
            Event::Error { kind, message } => {
                let e = GatewayError::new(*kind, message.to_string());
                self.error(&e, out);
            }
            Event::Done => self.done(out),
            _ => {}
        }
    }

    /// An `error` event, numbered in this stream's sequence.
    pub fn error(&mut self, e: &GatewayError, out: &mut Vec<u8>) {
        self.event(out, "error", |_, out| write_error_members(e, out));
    }
}

/// `,"code":…,"message":…,"param":null` of an `error` event.
pub(super) fn write_error_members(e: &GatewayError, out: &mut Vec<u8>) {
    out.extend_from_slice(b",\"code\":\"");
    out.extend_from_slice(e.kind.code().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    push_str(out, &e.message);
    out.extend_from_slice(b",\"param\":null");
}

impl StreamEncode for StreamEncoder {
    fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        StreamEncoder::encode(self, ev, out)
    }
}
