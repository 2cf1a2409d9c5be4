//! The OpenAI Chat Completions protocol as an [`Adapter`].

use super::{ingress, upstream};
use crate::error::GatewayError;
use crate::pipeline::decode::Decoder;
use crate::providers::adapter::{Adapter, Ingress, Splice, StreamDecode, StreamEncode};
use crate::providers::canonical::{ChatRequest, ChatResponse, Event, Json, Stamp};
use crate::providers::translate::Wire;
use crate::providers::{Endpoint, Usage};

/// OpenAI, and every OpenAI-compatible server.
pub struct OpenAi;

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

impl Adapter for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn wire(&self) -> Option<Wire> {
        Some(Wire::OpenAi)
    }

    fn chat_path(&self) -> &'static str {
        Endpoint::Chat.path()
    }

    fn models_path(&self) -> &'static str {
        "/models"
    }

    fn splice(&self, out: &mut Vec<u8>, s: &Splice<'_>) -> bool {
        super::build(out, s)
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

    fn retry_after(&self, headers: &[(String, String)], _now_ms: i64) -> Option<u64> {
        let mut reset = super::ratelimit::Reset::default();
        for (name, value) in headers {
            reset.observe(name.as_bytes(), value.as_bytes());
        }
        reset.wait_secs()
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        super::usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        match super::usage_from_event(json, data) {
            Some((u, only)) => {
                *usage = Some(u);
                only
            }
            None => false,
        }
    }
}

impl Ingress for OpenAi {
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
        e.write_openai_body(out)
    }

    fn error_event(&self, e: &GatewayError, out: &mut Vec<u8>) {
        out.extend_from_slice(b"data: ");
        e.write_openai_body(out);
        out.extend_from_slice(b"\n\n");
    }
}
