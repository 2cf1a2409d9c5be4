//! ConverseStream's events, as the translator hands them over from the event-stream frames
//! (`{"<event type>":<payload>}`): the message start, content block starts (a tool call's id
//! and name), deltas of text, tool input and reasoning, the message stop with its reason, and
//! the `metadata` event with usage, which ends the stream. An exception frame ends it with an
//! error. Tool calls are numbered in the order they start. No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::converse::{exception_kind, finish_of, str_at, usage_of};
use crate::error::{GatewayError, Kind, upstream_message};
use crate::providers::Usage;
use crate::providers::canonical::{Event, Finish, MAX_TOOL_CALLS};

#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// The content block index of each tool call, by its number.
    calls: Vec<u64>,
    finish: Option<Finish>,
    ended: bool,
}

impl StreamDecoder {
    fn call_of(&self, block: Option<u64>) -> Option<u32> {
        let b = block?;
        self.calls.iter().position(|&c| c == b).map(|i| i as u32)
    }

    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        if self.ended {
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data).map_err(|e| {
            GatewayError::new(
                Kind::UpstreamProtocol,
                format!("bedrock: stream event is not JSON: {e}"),
            )
        })?;
        let Some((name, body)) = v.as_object().and_then(|o| o.iter().next()) else {
            return Ok(());
        };
        let block = body.get("contentBlockIndex").and_then(|i| i.as_u64());
        match name.as_ref() {
            "messageStart" => emit(Event::Start {
                id: Cow::Borrowed(""),
                model: Cow::Borrowed(""),
                usage: Usage::default(),
            }),
            "contentBlockStart" => {
                if let Some(t) = body.get("start").and_then(|s| s.get("toolUse"))
                    && self.calls.len() < MAX_TOOL_CALLS
                {
                    let index = self.calls.len() as u32;
                    self.calls.push(block.unwrap_or(u64::MAX));
                    emit(Event::ToolCall {
                        index,
                        id: Cow::Borrowed(str_at(t, "toolUseId").unwrap_or_default()),
                        name: Cow::Borrowed(str_at(t, "name").unwrap_or_default()),
                    });
                }
            }
            "contentBlockDelta" => {
                let Some(d) = body.get("delta") else {
                    return Ok(());
                };
                if let Some(t) = str_at(d, "text") {
                    emit(Event::Text(Cow::Borrowed(t)));
                } else if let Some(t) = d.get("toolUse") {
                    if let (Some(index), Some(f)) = (self.call_of(block), str_at(t, "input")) {
                        emit(Event::ToolArguments {
                            index,
                            fragment: Cow::Borrowed(f),
                        });
                    }
                } else if let Some(r) = d.get("reasoningContent") {
                    if let Some(t) = str_at(r, "text") {
                        emit(Event::Thinking(Cow::Borrowed(t)));
                    }
                    if let Some(s) = str_at(r, "signature") {
                        emit(Event::ThinkingSignature(Cow::Borrowed(s)));
                    }
                    if let Some(x) = str_at(r, "redactedContent") {
                        emit(Event::RedactedThinking(Cow::Borrowed(x)));
                    }
                }
            }
            "messageStop" => {
                let reason = finish_of(str_at(body, "stopReason").unwrap_or("end_turn"));
                self.finish = Some(reason);
                emit(Event::Finish {
                    reason,
                    stop_sequence: None,
                });
            }
            "metadata" => {
                self.ended = true;
                if let Some(u) = body.get("usage") {
                    emit(Event::Usage(usage_of(u)));
                }
                emit(Event::Done);
            }
            "error" => {
                self.ended = true;
                emit(Event::Error {
                    kind: Kind::UpstreamServer,
                    message: Cow::Owned(upstream_message("bedrock", str_at(body, "message"), None)),
                });
            }
            other if other.ends_with("Exception") => {
                self.ended = true;
                let message = str_at(body, "message").or_else(|| str_at(body, "Message"));
                emit(Event::Error {
                    kind: exception_kind(other, message),
                    message: Cow::Owned(upstream_message("bedrock", message, None)),
                });
            }
            _ => {}
        }
        Ok(())
    }
}
