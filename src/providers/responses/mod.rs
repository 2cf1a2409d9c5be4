//! OpenAI's Responses API (`POST /v1/responses`), as an upstream and as an ingress. A
//! Responses client in front of a Responses provider is spliced (the client's bytes, `model`
//! replaced), so server-side state — `previous_response_id`, stored conversations, OpenAI's
//! built-in tools — passes through; every other pair is translated through the canonical
//! form. `upstream` and `stream` read a provider's answers, `ingress` and `events` write a
//! client's. Usage is in the response object (`usage`), or in `response.completed`.

mod events;
pub mod ingress;
mod stream;
pub mod upstream;

pub use stream::StreamDecoder;

use simd_json::prelude::*;

use super::adapter::{Adapter, Ingress, Splice, StreamDecode, StreamEncode};
use super::canonical::{ChatRequest, ChatResponse, Event, Json, Stamp};
use super::translate::Wire;
use super::{Endpoint, Usage};
use crate::error::GatewayError;
use crate::pipeline::decode::{Decoder, StreamOptions};

/// The Responses API.
pub struct Responses;

impl StreamDecode for StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        StreamDecoder::decode(self, data, emit)
    }
}

impl Adapter for Responses {
    fn name(&self) -> &'static str {
        "openai-responses"
    }

    fn wire(&self) -> Option<Wire> {
        Some(Wire::Responses)
    }

    fn chat_path(&self) -> &'static str {
        Endpoint::Responses.path()
    }

    fn models_path(&self) -> &'static str {
        "/models"
    }

    /// The client's body with the target's model. Usage always comes in
    /// `response.completed`: nothing is injected (`stream_options` is Chat's).
    fn splice(&self, out: &mut Vec<u8>, s: &Splice<'_>) -> bool {
        let mut decoded = s.decoded.clone();
        decoded.stream_options = StreamOptions::IncludeUsage;
        let s = Splice {
            decoded: &decoded,
            endpoint: Endpoint::Responses,
            ..*s
        };
        super::openai::build(out, &s);
        false
    }

    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        upstream::encode_request(r, stamp, out, dropped)
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        upstream::decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Box::<StreamDecoder>::default()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        super::openai::upstream::classify_as("openai-responses", status, body)
    }

    fn retry_after(&self, headers: &[(String, String)], now_ms: i64) -> Option<u64> {
        super::openai::OpenAi.retry_after(headers, now_ms)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        memchr::memmem::find(body, b"\"usage\"")?;
        json.parse(body, |v| {
            let u = v.get("usage")?;
            u.is_object().then(|| tape_usage(u))
        })
        .flatten()
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        if memchr::memmem::find(data, b"\"usage\"").is_some() {
            let found = json.parse(data, |v| {
                let t = v.get("type")?;
                if !matches!(
                    t.as_str(),
                    Some("response.completed" | "response.incomplete")
                ) {
                    return None;
                }
                let u = v.get("response")?.get("usage")?;
                u.is_object().then(|| tape_usage(u))
            });
            if let Some(Some(u)) = found {
                *usage = Some(u);
            }
        }
        false
    }
}

fn tape_usage(u: simd_json::tape::Value<'_, '_>) -> Usage {
    let n = |v: Option<simd_json::tape::Value<'_, '_>>| v.and_then(|x| x.as_u64()).unwrap_or(0);
    let input = n(u.get("input_tokens"));
    let output = n(u.get("output_tokens"));
    Usage {
        input,
        output,
        cache_read: n(u
            .get("input_tokens_details")
            .and_then(|d| d.get("cached_tokens")))
        .min(input),
        cache_write: 0,
        reasoning: n(u
            .get("output_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")))
        .min(output),
    }
}

impl Ingress for Responses {
    fn decode_request<'a>(&self, v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
        ingress::decode_request(v)
    }

    fn encode_response(&self, r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
        ingress::encode_response(r, stamp, out)
    }

    fn stream_encoder(&self, stamp: &Stamp<'_>, _include_usage: bool) -> Box<dyn StreamEncode> {
        Box::new(events::StreamEncoder::new(stamp))
    }

    fn error_body(&self, e: &GatewayError, out: &mut Vec<u8>) {
        e.write_openai_body(out)
    }

    fn error_event(&self, e: &GatewayError, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: {\"type\":\"error\",\"sequence_number\":0");
        events::write_error_members(e, out);
        out.extend_from_slice(b"}\n\n");
    }
}

#[cfg(test)]
mod tests;
