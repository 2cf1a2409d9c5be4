//! The Gemini API (`generateContent`, `streamGenerateContent?alt=sse`), as an upstream and as
//! an ingress. The model is in the path: `models/{model}:{method}` under the provider's base
//! URL (`/v1beta`), or under Vertex AI's project paths ([`super::vertex`], which reuses this
//! protocol's bodies). `upstream` writes requests and reads answers and errors, `stream` reads
//! the streamed chunks, `ingress` serves Google's SDKs. The key goes in `x-goog-api-key`.

mod embed;
pub mod ingress;
mod stream;
pub mod upstream;

pub use stream::StreamDecoder;

use simd_json::prelude::*;

use super::adapter::{Adapter, Head, Splice, StreamDecode};
use super::canonical::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Event, Json, Stamp,
};
use super::translate::Wire;
use super::{Endpoint, Usage, head};
use crate::error::GatewayError;
use crate::pipeline::decode::Decoder;

/// Google's Gemini API.
pub struct Gemini;

impl StreamDecode for StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        StreamDecoder::decode(self, data, emit)
    }
}

/// `{prefix}/{model}:{method}` for a chat (streamed or not) or embeddings.
pub fn write_path(out: &mut Vec<u8>, prefix: &str, model: &str, endpoint: Endpoint, stream: bool) {
    out.extend_from_slice(prefix.as_bytes());
    out.push(b'/');
    head::push_path_segment(out, model);
    out.extend_from_slice(match (endpoint, stream) {
        (Endpoint::Embeddings, _) => b":batchEmbedContents".as_slice(),
        (_, true) => b":streamGenerateContent?alt=sse",
        (_, false) => b":generateContent",
    });
}

fn write_head(out: &mut Vec<u8>, h: &Head<'_>) {
    let mut path = Vec::with_capacity(64 + h.model.len());
    write_path(&mut path, "/v1beta/models", h.model, h.endpoint, h.stream);
    let path = std::str::from_utf8(&path).unwrap_or_default();
    head::write(
        out,
        h.provider,
        h.api_key,
        h.origin,
        path,
        h.model,
        h.body.len(),
        h.stream,
    );
}

impl Adapter for Gemini {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn wire(&self) -> Option<Wire> {
        Some(Wire::Gemini)
    }

    fn chat_path(&self) -> &'static str {
        "/v1beta/models"
    }

    fn models_path(&self) -> &'static str {
        "/v1beta/models"
    }

    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        write_head(out, h)
    }

    /// A Gemini client's body goes as it is: the model is only in the path.
    fn splice(&self, out: &mut Vec<u8>, s: &Splice<'_>) -> bool {
        // The gateway's own `cache` member does not go upstream.
        let stripped;
        let body = match super::openai::cache_member_edit(s.body, s.decoded) {
            None => s.body,
            Some((edit, last)) => {
                let mut edits = [edit];
                super::openai::arrange(s.body, &mut edits, last.then_some(edit.0));
                let mut b = Vec::with_capacity(s.body.len());
                super::openai::write_edited(&mut b, s.body, &edits);
                stripped = b;
                &stripped
            }
        };
        let h = Head {
            provider: s.provider,
            api_key: s.api_key,
            origin: s.origin,
            endpoint: Endpoint::Generate,
            model: s.model,
            body,
            stream: s.decoded.stream,
            now: 0,
        };
        write_head(out, &h);
        out.extend_from_slice(body);
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
        upstream::classify(status, body)
    }

    fn encode_embeddings(
        &self,
        r: &EmbedRequest<'_>,
        model: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), GatewayError> {
        embed::encode_request(r, model, out);
        Ok(())
    }

    fn decode_embeddings(&self, v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
        embed::decode_response(v)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        usage_from(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        if let Some(u) = usage_from(json, data) {
            *usage = Some(u);
        }
        false
    }
}

fn usage_from(json: &mut Decoder, body: &[u8]) -> Option<Usage> {
    memchr::memmem::find(body, b"\"usageMetadata\"")?;
    json.parse(body, |v| {
        let u = v.get("usageMetadata")?;
        let n = |k: &str| u.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
        let (input, thoughts) = (n("promptTokenCount"), n("thoughtsTokenCount"));
        Some(Usage {
            input,
            output: n("candidatesTokenCount") + thoughts,
            cache_read: n("cachedContentTokenCount").min(input),
            cache_write: 0,
            reasoning: thoughts,
        })
    })
    .flatten()
}
