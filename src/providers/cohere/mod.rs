//! The Cohere v2 chat protocol (`POST /v2/chat`), an upstream only: no client speaks it, so
//! every request is translated through [`super::canonical`] (`upstream`).

pub mod upstream;

use simd_json::prelude::*;

use super::Usage;
use super::adapter::{Adapter, StreamDecode};
use super::canonical::{ChatRequest, ChatResponse, Event, Json, Stamp};
use super::translate::Wire;
use crate::error::GatewayError;
use crate::pipeline::decode::Decoder;

/// Cohere's chat API.
pub struct Cohere;

impl StreamDecode for upstream::StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        upstream::StreamDecoder::decode(self, data, emit)
    }
}

impl Adapter for Cohere {
    fn name(&self) -> &'static str {
        "cohere"
    }

    fn wire(&self) -> Option<Wire> {
        None
    }

    fn chat_path(&self) -> &'static str {
        "/v2/chat"
    }

    fn models_path(&self) -> &'static str {
        "/v1/models"
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
        Box::<upstream::StreamDecoder>::default()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        upstream::classify(status, body)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        memchr::memmem::find(body, b"\"usage\"")?;
        json.parse(body, |v| {
            let u = v.get("usage")?;
            let n = |holder: &str, k: &str| {
                u.get(holder)
                    .and_then(|h| h.get(k))
                    .and_then(|x| x.as_u64())
            };
            Some(Usage {
                input: n("tokens", "input_tokens").or(n("billed_units", "input_tokens"))?,
                output: n("tokens", "output_tokens")
                    .or(n("billed_units", "output_tokens"))
                    .unwrap_or(0),
                ..Usage::default()
            })
        })
        .flatten()
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        // Only `message-end` carries usage, under `delta`.
        if memchr::memmem::find(data, b"\"message-end\"").is_none() {
            return false;
        }
        let found = json.parse(data, |v| {
            let u = v.get("delta")?.get("usage")?;
            let n = |k: &str| {
                u.get("tokens")
                    .and_then(|t| t.get(k))
                    .and_then(|x| x.as_u64())
            };
            Some(Usage {
                input: n("input_tokens").unwrap_or(0),
                output: n("output_tokens").unwrap_or(0),
                ..Usage::default()
            })
        });
        if let Some(Some(u)) = found {
            *usage = Some(u);
        }
        false
    }
}
