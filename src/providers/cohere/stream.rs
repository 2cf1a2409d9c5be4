//! Cohere's `/v2/chat` stream, one typed SSE event at a time (`message-start`,
//! `content-delta`, `tool-call-start`, …, `message-end`), as canonical stream events. No I/O.
//!
//! Cohere sends no sentinel: `message-end` carries the finish reason and usage and is the end
//! (`Done`). A `message-end` that reports a failure (`ERROR`, `TIMEOUT`, an `error` message)
//! is an `Error` event instead, and the stream has no `Done`, as when Anthropic sends an
//! `error` event. Tool calls are numbered 0, 1, 2… as they start, whatever `index` the wire
//! gives them. The tool plan streams as text, as a whole answer's plan is read.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::upstream::{failure, finish_of, protocol, str_at, usage_of};
use crate::error::{GatewayError, Kind, upstream_message};
use crate::providers::Usage;
use crate::providers::canonical::{Event, Json, MAX_TOOL_CALLS};

/// Reads a `/v2/chat` SSE stream one event's data at a time.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// The wire `index` of every tool call started so far; a call's position is its number.
    tools: Vec<Option<u64>>,
    /// `message-end` went through (a stray `[DONE]` after it ends nothing more).
    ended: bool,
}

impl StreamDecoder {
    /// Decodes one event's data (parsed in place) and emits its canonical events.
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        let d = data.trim_ascii();
        if d.is_empty() {
            return Ok(());
        }
        if d == b"[DONE]" {
            // Cohere's SDKs know this terminator; the API ends with `message-end` instead.
            if !std::mem::replace(&mut self.ended, true) {
                emit(Event::Done);
            }
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("cohere: stream event is not valid JSON: {e}")))?;
        let delta = v.get("delta");
        let msg = delta.and_then(|d| d.get("message"));
        match str_at(&v, "type") {
            Some("message-start") => {
                self.tools.clear();
                self.ended = false;
                emit(Event::Start {
                    id: Cow::Borrowed(str_at(&v, "id").unwrap_or_default()),
                    // Cohere does not name the model; the ingress reports the one asked for.
                    model: Cow::Borrowed(""),
                    usage: Usage::default(),
                });
            }
            Some("content-start" | "content-delta") => {
                let content = msg.and_then(|m| m.get("content"));
                if let Some(t) = content.and_then(|c| text(c, "thinking")) {
                    emit(Event::Thinking(Cow::Borrowed(t)));
                }
                if let Some(t) = content.and_then(|c| text(c, "text")) {
                    emit(Event::Text(Cow::Borrowed(t)));
                }
            }
            Some("tool-plan-delta") => {
                if let Some(t) = msg.and_then(|m| text(m, "tool_plan")) {
                    emit(Event::Text(Cow::Borrowed(t)));
                }
            }
            Some("tool-call-start") => self.call_start(&v, msg, emit)?,
            Some("tool-call-delta") => self.call_delta(&v, msg, emit)?,
            Some("message-end") => {
                self.ended = true;
                message_end(delta, emit);
            }
            // An error body sent in band (`{"id","message"}`, no type).
            None if v.get("message").is_some_and(|m| m.is_str()) => {
                self.ended = true;
                emit(Event::Error {
                    kind: Kind::UpstreamServer,
                    message: Cow::Owned(upstream_message("cohere", str_at(&v, "message"), None)),
                });
            }
            // content-end, tool-call-end, citation-start/-end, debug: nothing to carry.
            _ => {}
        }
        Ok(())
    }

    /// `tool-call-start`: the call's id and name, and perhaps the start of its arguments.
    fn call_start<'v>(
        &mut self,
        v: Json<'v>,
        msg: Option<Json<'v>>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        if self.tools.len() > MAX_TOOL_CALLS {
            return Ok(()); // the translator has ended the stream over this already
        }
        let call = msg.and_then(|m| m.get("tool_calls"));
        let f = call.and_then(|c| c.get("function"));
        let Some(name) = f.and_then(|f| text(f, "name")) else {
            return Err(protocol("cohere: tool-call-start without a function name"));
        };
        let index = self.tools.len() as u32;
        self.tools.push(v.get("index").and_then(|i| i.as_u64()));
        let id = call.and_then(|c| text(c, "id"));
        emit(Event::ToolCall {
            index,
            id: id.map_or_else(|| Cow::Owned(format!("call_{index}")), Cow::Borrowed),
            name: Cow::Borrowed(name),
        });
        if let Some(fragment) = f.and_then(|f| text(f, "arguments")) {
            emit(Event::ToolArguments {
                index,
                fragment: Cow::Borrowed(fragment),
            });
        }
        Ok(())
    }

    /// `tool-call-delta`: a fragment of the arguments of the call its `index` names (the
    /// latest call, without one).
    fn call_delta<'v>(
        &mut self,
        v: Json<'v>,
        msg: Option<Json<'v>>,
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        let fragment = msg
            .and_then(|m| m.get("tool_calls"))
            .and_then(|c| c.get("function"))
            .and_then(|f| text(f, "arguments"));
        let Some(fragment) = fragment else {
            return Ok(());
        };
        let wire = v.get("index").and_then(|i| i.as_u64());
        let index = match wire {
            Some(w) => self.tools.iter().position(|t| *t == Some(w)),
            None => self.tools.len().checked_sub(1),
        };
        match index {
            Some(index) => emit(Event::ToolArguments {
                index: index as u32,
                fragment: Cow::Borrowed(fragment),
            }),
            None if self.tools.len() > MAX_TOOL_CALLS => {}
            None => {
                return Err(protocol(
                    "cohere: tool-call-delta for a tool call that never started",
                ));
            }
        }
        Ok(())
    }
}

/// `message-end`: the finish, the usage and the end, or the failure it reports.
fn message_end(delta: Option<Json<'_>>, emit: &mut dyn FnMut(Event<'_>)) {
    let reason = delta.and_then(|d| str_at(d, "finish_reason"));
    let usage = delta.and_then(|d| d.get("usage")).filter(|u| u.is_object());
    if let Some(e) = failure(reason, delta.and_then(|d| str_at(d, "error"))) {
        // What the failed generation consumed is still accounted.
        if let Some(u) = usage {
            emit(Event::Usage(usage_of(u)));
        }
        emit(Event::Error {
            kind: e.kind,
            message: Cow::Owned(e.message),
        });
        return;
    }
    if let Some(reason) = reason.and_then(finish_of) {
        emit(Event::Finish {
            reason,
            // Cohere does not say which stop sequence matched.
            stop_sequence: None,
        });
    }
    if let Some(u) = usage {
        emit(Event::Usage(usage_of(u)));
    }
    emit(Event::Done);
}

/// `v[key]` as a non-empty string.
fn text<'a>(v: Json<'a>, key: &str) -> Option<&'a str> {
    str_at(v, key).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
