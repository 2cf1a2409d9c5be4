//! Gemini's `streamGenerateContent?alt=sse`: every event's data is a whole
//! `GenerateContentResponse` holding the next piece of the answer. Text and thinking arrive as
//! deltas, a function call whole in one part; the chunk with a `finishReason` (usage in it or
//! after it) ends the answer, since Gemini sends no sentinel. No I/O.

use std::borrow::Cow;

use simd_json::prelude::*;

use super::upstream::{finish_of, kind_of, part, protocol, str_at, usage_of};
use crate::error::{GatewayError, upstream_message};
use crate::providers::Usage;
use crate::providers::canonical::{Event, Finish, MAX_TOOL_CALLS, Part};

#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    /// The stream's `responseId`, which names its calls.
    response: String,
    calls: u32,
    finish: Option<Finish>,
    ended: bool,
}

impl StreamDecoder {
    pub fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        if data.trim_ascii().is_empty() || self.ended {
            return Ok(());
        }
        let v = simd_json::to_borrowed_value(data)
            .map_err(|e| protocol(format!("gemini: stream event is not valid JSON: {e}")))?;
        if let Some(e) = v.get("error") {
            self.ended = true;
            let message = str_at(e, "message");
            let status = e.get("code").and_then(|c| c.as_u64()).unwrap_or(500) as u16;
            emit(Event::Error {
                kind: kind_of(status, str_at(e, "status"), message),
                message: Cow::Owned(upstream_message("gemini", message, None)),
            });
            return Ok(());
        }
        if !std::mem::replace(&mut self.started, true) {
            self.response = str_at(&v, "responseId").unwrap_or_default().to_string();
            emit(Event::Start {
                id: Cow::Borrowed(str_at(&v, "responseId").unwrap_or_default()),
                model: Cow::Borrowed(str_at(&v, "modelVersion").unwrap_or_default()),
                usage: Usage::default(),
            });
        }
        let cand = v
            .get("candidates")
            .and_then(|c| c.as_array())
            .and_then(|c| c.first());
        let list = cand
            .and_then(|c| c.get("content"))
            .and_then(|c| c.get("parts"))
            .and_then(|p| p.as_array());
        for p in list.into_iter().flatten() {
            if self.calls as usize > MAX_TOOL_CALLS {
                break;
            }
            match part(p, &mut self.calls, &self.response) {
                Some(Part::Text(t)) => emit(Event::Text(t)),
                Some(Part::Thinking { text, signature }) => {
                    if !text.is_empty() {
                        emit(Event::Thinking(text));
                    }
                    if let Some(s) = signature {
                        emit(Event::ThinkingSignature(s));
                    }
                }
                Some(Part::ToolCall {
                    id,
                    name,
                    arguments,
                }) => {
                    let index = self.calls - 1;
                    emit(Event::ToolCall { index, id, name });
                    emit(Event::ToolArguments {
                        index,
                        fragment: arguments,
                    });
                }
                _ => {}
            }
        }
        if let Some(f) = cand
            .and_then(|c| str_at(c, "finishReason"))
            .and_then(finish_of)
        {
            self.finish = Some(if f == Finish::EndTurn && self.calls > 0 {
                Finish::ToolCalls
            } else {
                f
            });
        }
        let blocked = cand.is_none()
            && v.get("promptFeedback")
                .and_then(|f| f.get("blockReason"))
                .is_some();
        if blocked {
            self.finish = Some(Finish::ContentFilter);
        }
        if let Some(u) = v.get("usageMetadata") {
            emit(Event::Usage(usage_of(u)));
        }
        if let Some(reason) = self.finish {
            self.ended = true;
            emit(Event::Finish {
                reason,
                stop_sequence: None,
            });
            emit(Event::Done);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(events: &[&str]) -> Vec<String> {
        let mut d = StreamDecoder::default();
        let mut out = Vec::new();
        for e in events {
            let mut b = e.as_bytes().to_vec();
            d.decode(&mut b, &mut |ev| out.push(format!("{ev:?}")))
                .unwrap();
        }
        out
    }

    #[test]
    fn text_calls_usage_and_the_end() {
        let out = run(&[
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]}}],"responseId":"r1","modelVersion":"gemini-x"}"#,
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"lo"},{"functionCall":{"name":"f","args":{"a":1}}},{"functionCall":{"name":"g","args":{}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":4,"thoughtsTokenCount":2,"cachedContentTokenCount":3}}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"late"}]}}]}"#,
        ]);
        assert!(
            out[0].starts_with("Start") && out[0].contains("r1"),
            "{out:?}"
        );
        assert_eq!(out[1], r#"Text("Hel")"#);
        assert_eq!(out[2], r#"Text("lo")"#);
        assert!(out[3].contains("ToolCall { index: 0") && out[3].contains("call_r1_0"));
        assert!(
            out[4].contains(r#"ToolArguments { index: 0, fragment: "{\"a\":1}" }"#),
            "{}",
            out[4]
        );
        assert!(out[5].contains("index: 1"));
        assert!(
            out[7].starts_with("Usage(Usage { input: 10, output: 6, cache_read: 3"),
            "{}",
            out[7]
        );
        assert!(out[8].contains("ToolCalls"));
        assert_eq!(out[9], "Done");
        assert_eq!(out.len(), 10, "nothing after the end");
    }

    #[test]
    fn an_error_chunk_ends_the_stream_with_its_kind() {
        let out =
            run(&[r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#]);
        assert!(
            out[0].contains("UpstreamRateLimited") && out[0].contains("quota"),
            "{out:?}"
        );
    }
}
