//! The Anthropic Messages protocol as an [`Adapter`].

use super::{ingress, upstream};
use crate::error::GatewayError;
use crate::pipeline::decode::Decoder;
use crate::providers::adapter::{Adapter, Ingress, Splice, StreamDecode, StreamEncode};
use crate::providers::canonical::{ChatRequest, ChatResponse, Event, Json, Stamp};
use crate::providers::translate::Wire;
use crate::providers::{Endpoint, Usage};

/// Anthropic's Messages API.
pub struct Anthropic;

impl StreamDecode for upstream::StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        upstream::StreamDecoder::decode(self, data, emit)
    }
}

impl StreamEncode for ingress::StreamEncoder {
    fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>) {
        ingress::StreamEncoder::encode(self, ev, out)
    }
}

impl Adapter for Anthropic {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn wire(&self) -> Option<Wire> {
        Some(Wire::Anthropic)
    }

    fn counts_tokens(&self) -> bool {
        true
    }

    fn chat_path(&self) -> &'static str {
        Endpoint::Messages.path()
    }

    fn models_path(&self) -> &'static str {
        "/v1/models"
    }

    fn splice(&self, out: &mut Vec<u8>, s: &Splice<'_>) -> bool {
        super::build(out, s);
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
        Box::<upstream::StreamDecoder>::default()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        upstream::classify(status, body)
    }

    fn retry_after(&self, headers: &[(String, String)], now_ms: i64) -> Option<u64> {
        super::ratelimit::wait_secs(headers, now_ms)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        super::usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        super::usage_from_event(json, data, usage);
        false
    }
}

impl Ingress for Anthropic {
    fn decode_request<'a>(&self, v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError> {
        ingress::decode_request(v)
    }

    fn encode_response(&self, r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>) {
        ingress::encode_response(r, stamp, out)
    }

    fn stream_encoder(&self, stamp: &Stamp<'_>, include_usage: bool) -> Box<dyn StreamEncode> {
        Box::new(ingress::StreamEncoder::new(stamp, include_usage))
    }

    fn error_body(&self, e: &GatewayError, out: &mut Vec<u8>) {
        e.write_anthropic_body(out)
    }

    fn error_event(&self, e: &GatewayError, out: &mut Vec<u8>) {
        out.extend_from_slice(b"event: error\ndata: ");
        e.write_anthropic_body(out);
        out.extend_from_slice(b"\n\n");
    }

    fn anthropic_rate_headers(&self) -> bool {
        true
    }
}
