//! Amazon Bedrock's Converse and ConverseStream (`POST /model/{id}/converse`,
//! `/converse-stream`), an upstream only. Requests are signed with AWS Signature Version 4
//! ([`sigv4`], checked against AWS's test suite) for service `bedrock` in the provider's
//! region, or carry a Bedrock API key as a bearer token. Streams come in AWS's binary event
//! stream ([`eventstream`], CRCs checked), which the translator unwraps frame by frame for
//! [`stream`]. `converse` writes and reads the bodies, `embed` serves Titan and Cohere
//! embeddings through `InvokeModel`. No I/O.

mod converse;
mod embed;
pub mod eventstream;
pub mod sigv4;
mod stream;

pub use stream::StreamDecoder;

use super::adapter::{Adapter, Framing, Head, StreamDecode};
use super::canonical::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Event, Json, Stamp,
};
use super::translate::Wire;
use super::{Endpoint, Usage, head};
use crate::error::GatewayError;
use crate::json::push_u64;
use crate::pipeline::decode::Decoder;

/// Amazon Bedrock's runtime API.
pub struct Bedrock;

impl StreamDecode for StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        StreamDecoder::decode(self, data, emit)
    }
}

/// `{base}/model/{id}/{converse | converse-stream | invoke}`.
fn path(h: &Head<'_>) -> Vec<u8> {
    let mut p = Vec::with_capacity(64 + h.model.len());
    p.extend_from_slice(h.provider.base_path.as_bytes());
    p.extend_from_slice(b"/model/");
    head::push_path_segment(&mut p, h.model);
    p.extend_from_slice(match (h.endpoint, h.stream) {
        (Endpoint::Embeddings, _) => b"/invoke".as_slice(),
        (_, true) => b"/converse-stream",
        (_, false) => b"/converse",
    });
    p
}

fn write_head(out: &mut Vec<u8>, h: &Head<'_>) {
    let p = h.provider;
    let path = path(h);
    let path = std::str::from_utf8(&path).unwrap_or_default();
    let Some(keys) = &p.aws else {
        // A Bedrock API key: a bearer token, no signature (head::write prepends base_path).
        let rest = &path[p.base_path.len()..];
        return head::write(
            out,
            p,
            h.api_key,
            h.origin,
            rest,
            h.model,
            h.body.len(),
            h.stream,
        );
    };
    let amz_date = sigv4::amz_date(h.now);
    let accept = if h.stream {
        "application/vnd.amazon.eventstream"
    } else {
        "application/json"
    };
    let token = keys.session_token.as_ref().map(|t| t.expose());
    let mut signed: Vec<(&str, &str)> = vec![
        ("host", h.origin.authority.as_str()),
        ("content-type", "application/json"),
        ("x-amz-date", &amz_date),
    ];
    if let Some(t) = token {
        signed.push(("x-amz-security-token", t));
    }
    let payload_hash = sigv4::hex_sha256(h.body);
    let request = sigv4::Request {
        method: "POST",
        path,
        query: "",
        headers: &signed,
        payload_hash: &payload_hash,
    };
    let scope = sigv4::Scope {
        amz_date: &amz_date,
        region: p.region.as_deref().unwrap_or("us-east-1"),
        service: "bedrock",
    };
    let creds = sigv4::Credentials {
        access_key_id: keys.access_key_id.expose(),
        secret_access_key: keys.secret_access_key.expose(),
        session_token: token,
    };
    let authorization = sigv4::authorization(&creds, &scope, &request);
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1");
    for (name, value) in &signed {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    push_u64(out, h.body.len() as u64);
    out.extend_from_slice(b"\r\naccept: ");
    out.extend_from_slice(accept.as_bytes());
    out.extend_from_slice(b"\r\nuser-agent: shardgate/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    for (name, value) in &p.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\nauthorization: ");
    out.extend_from_slice(authorization.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

impl Adapter for Bedrock {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn wire(&self) -> Option<Wire> {
        None
    }

    fn chat_path(&self) -> &'static str {
        "/model"
    }

    /// The runtime endpoint has no model list (`GET /foundation-models` is the control
    /// plane's, on another host): see [`Adapter::lists_models`].
    fn models_path(&self) -> &'static str {
        "/foundation-models"
    }

    fn lists_models(&self) -> bool {
        false
    }

    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        write_head(out, h)
    }

    fn framing(&self) -> Framing {
        Framing::EventStream
    }

    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        converse::encode_request(r, stamp, out, dropped)
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        converse::decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Box::<StreamDecoder>::default()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        converse::classify(status, body)
    }

    fn encode_embeddings(
        &self,
        r: &EmbedRequest<'_>,
        model: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), GatewayError> {
        embed::encode_request(r, model, out)
    }

    fn decode_embeddings(&self, v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
        embed::decode_response(v)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        let mut copy = body.to_vec();
        let _ = json;
        let v = simd_json::to_borrowed_value(&mut copy).ok()?;
        simd_json::prelude::ValueObjectAccess::get(&v, "usage").map(converse::usage_of)
    }

    fn usage_from_event(
        &self,
        _json: &mut Decoder,
        _data: &[u8],
        _usage: &mut Option<Usage>,
    ) -> bool {
        // Never called: no client speaks Converse, so its streams are always translated.
        false
    }
}

#[cfg(test)]
mod tests;
