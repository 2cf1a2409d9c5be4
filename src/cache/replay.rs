//! Serving a stored answer. An entry holds the answer as its first client received it (one
//! JSON body or an SSE stream, in that client's protocol); a hit reads it back into the
//! canonical form and writes it in the form this request asked for, with a fresh id and zero
//! usage: whole as the ingress's JSON, streamed as the ingress's event sequence — text and
//! tool-call arguments in small deltas, a finish, usage, and the end event, never one lump.
//!
//! Reading back is also where an answer is checked: one that did not end in a stop, a tool
//! call or (where the alias allows) `length`, a stream without its end event, or bytes that no
//! longer decode, is not served (the caller drops the entry and goes upstream).

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use super::store::Entry;
use crate::providers::Usage;
use crate::providers::adapter::StreamEncode;
use crate::providers::canonical::{ChatResponse, Event, Finish, Part, Stamp};
use crate::providers::translate::{StreamTranslator, Wire};

/// An answer read back from an entry, owning its text.
pub type Answer = ChatResponse<'static>;

/// Text per replayed delta, about what a model streams in a few tokens.
const DELTA: usize = 32;

/// Reads an entry back; `None` when it is not an answer the cache may serve.
pub fn read(e: &Entry, store_length: bool) -> Option<Answer> {
    let answer = if e.streamed {
        assemble(e.wire, &e.bytes)?
    } else {
        from_whole(e.wire, &e.bytes)?
    };
    let servable = match answer.finish? {
        Finish::EndTurn | Finish::StopSequence | Finish::ToolCalls => true,
        Finish::Length => store_length,
        Finish::ContentFilter | Finish::Paused => false,
    };
    servable.then_some(answer)
}

/// An answer read from one JSON body in `wire`'s shape.
pub fn from_whole(wire: Wire, bytes: &[u8]) -> Option<Answer> {
    let mut copy = bytes.to_vec();
    let v = simd_json::to_borrowed_value(&mut copy).ok()?;
    let r = wire.adapter().decode_response(&v).ok()?;
    owned(&r)
}

/// An answer as one JSON body in `wire`'s shape.
pub fn write_whole(a: &Answer, wire: Wire, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
    wire.ingress().encode_response(a, stamp, out);
}

/// An answer as `wire`'s stream of events.
pub fn write_stream(
    a: &Answer,
    wire: Wire,
    stamp: &Stamp<'_>,
    include_usage: bool,
    out: &mut Vec<u8>,
) {
    let mut enc = wire.ingress().stream_encoder(stamp, include_usage);
    let mut emit = |ev: Event<'_>| enc.encode(&ev, out);
    emit(Event::Start {
        // Empty: the encoder names the answer after this request (a fresh id).
        id: Cow::Borrowed(""),
        model: Cow::Borrowed(&a.model),
        usage: Usage::default(),
    });
    let mut call = 0u32;
    for p in &a.parts {
        match p {
            Part::Text(t) => pieces(t, |s| emit(Event::Text(Cow::Borrowed(s)))),
            Part::Thinking { text, signature } => {
                pieces(text, |s| emit(Event::Thinking(Cow::Borrowed(s))));
                if let Some(sig) = signature {
                    emit(Event::ThinkingSignature(Cow::Borrowed(sig)));
                }
            }
            Part::RedactedThinking(d) => emit(Event::RedactedThinking(Cow::Borrowed(d))),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                emit(Event::ToolCall {
                    index: call,
                    id: Cow::Borrowed(id),
                    name: Cow::Borrowed(name),
                });
                pieces(arguments, |s| {
                    emit(Event::ToolArguments {
                        index: call,
                        fragment: Cow::Borrowed(s),
                    })
                });
                call += 1;
            }
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    if let Some(reason) = a.finish {
        emit(Event::Finish {
            reason,
            stop_sequence: a.stop_sequence.as_deref().map(Cow::Borrowed),
        });
    }
    emit(Event::Usage(Usage::default()));
    emit(Event::Done);
}

/// Cuts `text` into deltas of about [`DELTA`] bytes, after a space where there is one.
fn pieces(text: &str, mut f: impl FnMut(&str)) {
    let mut rest = text;
    while rest.len() > DELTA {
        let mut cut = DELTA;
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        if let Some(space) = rest[..cut].rfind(' ').filter(|&s| s > 0) {
            cut = space + 1;
        }
        f(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        f(rest);
    }
}

fn owned(r: &ChatResponse<'_>) -> Option<Answer> {
    let mut parts = Vec::with_capacity(r.parts.len());
    for p in &r.parts {
        parts.push(owned_part(p)?);
    }
    Some(ChatResponse {
        id: Cow::Borrowed(""),
        model: Cow::Owned(r.model.to_string()),
        created: None,
        parts,
        finish: r.finish,
        stop_sequence: r.stop_sequence.as_deref().map(|s| Cow::Owned(s.to_owned())),
        usage: Usage::default(),
    })
}

fn owned_part(p: &Part<'_>) -> Option<Part<'static>> {
    let s = |c: &Cow<'_, str>| Cow::Owned(c.to_string());
    Some(match p {
        Part::Text(t) => Part::Text(s(t)),
        Part::ToolCall {
            id,
            name,
            arguments,
        } => Part::ToolCall {
            id: s(id),
            name: s(name),
            arguments: s(arguments),
        },
        Part::Thinking { text, signature } => Part::Thinking {
            text: s(text),
            signature: signature.as_ref().map(s),
        },
        Part::RedactedThinking(d) => Part::RedactedThinking(s(d)),
        // Answers carry neither.
        Part::Image(_) | Part::ToolResult { .. } => return None,
    })
}

/// A stored stream read back into one answer.
fn assemble(wire: Wire, bytes: &[u8]) -> Option<Answer> {
    let into = Rc::new(RefCell::new(Assembly::default()));
    let mut t = StreamTranslator::decoding(wire.adapter(), Box::new(Assembler(into.clone())));
    let mut sink = Vec::new();
    t.feed(bytes, &mut sink).ok()?;
    t.finish(&mut sink).ok()?;
    drop(t);
    let a = Rc::try_unwrap(into).ok()?.into_inner();
    (a.done && !a.failed).then_some(a.answer)
}

struct Assembly {
    answer: Answer,
    /// Part index of each tool call, by its stream index.
    calls: Vec<(u32, usize)>,
    done: bool,
    failed: bool,
}

impl Default for Assembly {
    fn default() -> Self {
        Assembly {
            answer: ChatResponse {
                id: Cow::Borrowed(""),
                model: Cow::Borrowed(""),
                created: None,
                parts: Vec::new(),
                finish: None,
                stop_sequence: None,
                usage: Usage::default(),
            },
            calls: Vec::new(),
            done: false,
            failed: false,
        }
    }
}

struct Assembler(Rc<RefCell<Assembly>>);

impl StreamEncode for Assembler {
    fn encode(&mut self, ev: &Event<'_>, _out: &mut Vec<u8>) {
        let mut a = self.0.borrow_mut();
        let Assembly {
            answer,
            calls,
            done,
            failed,
        } = &mut *a;
        let parts = &mut answer.parts;
        match ev {
            Event::Start { model, .. } if !model.is_empty() => {
                answer.model = Cow::Owned(model.to_string());
            }
            Event::Text(t) => match parts.last_mut() {
                Some(Part::Text(s)) => s.to_mut().push_str(t),
                _ => parts.push(Part::Text(Cow::Owned(t.to_string()))),
            },
            Event::Thinking(t) => match parts.last_mut() {
                Some(Part::Thinking { text, .. }) => text.to_mut().push_str(t),
                _ => parts.push(Part::Thinking {
                    text: Cow::Owned(t.to_string()),
                    signature: None,
                }),
            },
            Event::ThinkingSignature(sig) => {
                if let Some(Part::Thinking { signature, .. }) = parts.last_mut() {
                    signature.get_or_insert_default().to_mut().push_str(sig);
                }
            }
            Event::RedactedThinking(d) => {
                parts.push(Part::RedactedThinking(Cow::Owned(d.to_string())))
            }
            Event::ToolCall { index, id, name } => {
                calls.push((*index, parts.len()));
                parts.push(Part::ToolCall {
                    id: Cow::Owned(id.to_string()),
                    name: Cow::Owned(name.to_string()),
                    arguments: Cow::Owned(String::new()),
                });
            }
            Event::ToolArguments { index, fragment } => {
                let at = calls.iter().rev().find(|(i, _)| i == index).map(|c| c.1);
                if let Some(Part::ToolCall { arguments, .. }) = at.and_then(|i| parts.get_mut(i)) {
                    arguments.to_mut().push_str(fragment);
                }
            }
            Event::Finish {
                reason,
                stop_sequence,
            } => {
                answer.finish = Some(*reason);
                answer.stop_sequence = stop_sequence.as_deref().map(|s| Cow::Owned(s.to_owned()));
            }
            Event::Error { .. } => *failed = true,
            Event::Done => *done = true,
            Event::Start { .. } | Event::Usage(_) | Event::Ping => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_cut_at_spaces_and_char_boundaries() {
        let text = "héllo wörld ".repeat(10);
        let mut got = Vec::new();
        pieces(&text, |s| got.push(s.to_owned()));
        assert!(got.len() > 3);
        assert_eq!(got.concat(), text);
        assert!(got.iter().all(|p| p.len() <= DELTA + 3));
        let mut one = Vec::new();
        pieces("short", |s| one.push(s.to_owned()));
        assert_eq!(one, ["short"]);
    }
}
