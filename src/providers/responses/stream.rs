//! The Responses API's typed stream as canonical events: `response.created` starts it, text
//! and reasoning-summary deltas, function calls as their items are added and their argument
//! deltas, and `response.completed` / `.incomplete` ends it with the finish and usage;
//! `response.failed` and `error` events end it with an error. Other events carry nothing the
//! canonical form needs. No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::upstream::{failure, finish_of, str_at, usage_of};
use crate::error::GatewayError;
use crate::providers::Usage;
use crate::providers::canonical::{Event, Finish, MAX_TOOL_CALLS};

#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// The output index of each function call, in the order they were added.
    calls: Vec<u64>,
    ended: bool,
}

fn protocol(message: String) -> GatewayError {
    GatewayError::new(crate::error::Kind::UpstreamProtocol, message)
}

impl StreamDecoder {
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        let d = data.trim_ascii();
        if d.is_empty() || d == b"[DONE]" || self.ended {
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("openai-responses: stream event is not JSON: {e}")))?;
        let output_index = v.get("output_index").and_then(|i| i.as_u64());
        match str_at(&v, "type") {
            Some("response.created") => {
                let r = v.get("response");
                emit(Event::Start {
                    id: Cow::Borrowed(r.and_then(|r| str_at(r, "id")).unwrap_or_default()),
                    model: Cow::Borrowed(r.and_then(|r| str_at(r, "model")).unwrap_or_default()),
                    usage: Usage::default(),
                });
            }
            Some("response.output_text.delta" | "response.refusal.delta") => {
                if let Some(t) = str_at(&v, "delta") {
                    emit(Event::Text(Cow::Borrowed(t)));
                }
            }
            Some("response.reasoning_summary_text.delta") => {
                if let Some(t) = str_at(&v, "delta") {
                    emit(Event::Thinking(Cow::Borrowed(t)));
                }
            }
            Some("response.output_item.added") => {
                let item = v.get("item");
                if item.and_then(|i| str_at(i, "type")) == Some("function_call")
                    && self.calls.len() < MAX_TOOL_CALLS
                {
                    let item = item.expect("checked");
                    let index = self.calls.len() as u32;
                    self.calls.push(output_index.unwrap_or(u64::MAX));
                    emit(Event::ToolCall {
                        index,
                        id: Cow::Borrowed(str_at(item, "call_id").unwrap_or_default()),
                        name: Cow::Borrowed(str_at(item, "name").unwrap_or_default()),
                    });
                    if let Some(a) = str_at(item, "arguments").filter(|a| !a.is_empty()) {
                        emit(Event::ToolArguments {
                            index,
                            fragment: Cow::Borrowed(a),
                        });
                    }
                }
            }
            Some("response.function_call_arguments.delta") => {
                let call = output_index.and_then(|o| self.calls.iter().position(|&c| c == o));
                let index = call.unwrap_or(self.calls.len().saturating_sub(1)) as u32;
                if let Some(f) = str_at(&v, "delta") {
                    emit(Event::ToolArguments {
                        index,
                        fragment: Cow::Borrowed(f),
                    });
                }
            }
            Some("response.completed" | "response.incomplete") => {
                self.ended = true;
                let r = v.get("response");
                let reason = match r {
                    Some(r) => finish_of(r, self.calls.len()),
                    None => Finish::EndTurn,
                };
                emit(Event::Finish {
                    reason,
                    stop_sequence: None,
                });
                if let Some(u) = r.and_then(|r| r.get("usage")) {
                    emit(Event::Usage(usage_of(u)));
                }
                emit(Event::Done);
            }
            Some("response.failed") => {
                self.ended = true;
                let e = failure(v.get("response").and_then(|r| r.get("error")));
                emit(Event::Error {
                    kind: e.kind,
                    message: Cow::Owned(e.message),
                });
            }
            Some("error") => {
                self.ended = true;
                let e = failure(Some(v.get("error").unwrap_or(&v)));
                emit(Event::Error {
                    kind: e.kind,
                    message: Cow::Owned(e.message),
                });
            }
            _ => {}
        }
        Ok(())
    }
}
