//! Vertex AI: Google's and Anthropic's models behind Google Cloud's regional endpoints, as
//! one provider protocol. A model whose name starts `claude` is Anthropic's (`publishers/
//! anthropic`, Messages bodies with `anthropic_version` in place of `model`, `rawPredict`);
//! every other is Google's (`publishers/google`, Gemini bodies, `generateContent`, and text
//! embeddings through `predict`). [`Vertex::for_model`] picks the one; each reuses its
//! protocol's adapter for bodies, streams and errors and adds the path and the bearer token
//! that `crate::credentials` keeps fresh.

mod embed;

use super::adapter::{Adapter, Head, StreamDecode};
use super::anthropic::Anthropic;
use super::canonical::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Json, Stamp};
use super::gemini::Gemini;
use super::translate::Wire;
use super::{Endpoint, Usage, head};
use crate::config::Provider;
use crate::error::{GatewayError, Kind};
use crate::json::push_str;
use crate::pipeline::decode::Decoder;

/// The `anthropic_version` Vertex wants in an Anthropic body.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// The provider protocol: [`Vertex::for_model`] gives the adapter of a model's publisher.
pub struct Vertex;
/// Gemini models on Vertex.
pub struct VertexGemini;
/// Claude models on Vertex.
pub struct VertexAnthropic;

/// `{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`
/// with the provider's bearer token.
fn write_head(out: &mut Vec<u8>, h: &Head<'_>, publisher: &str, method: &str) {
    let p = h.provider;
    let mut path = Vec::with_capacity(96 + h.model.len());
    path.extend_from_slice(b"/v1/projects/");
    path.extend_from_slice(p.project.as_deref().unwrap_or_default().as_bytes());
    path.extend_from_slice(b"/locations/");
    path.extend_from_slice(p.region.as_deref().unwrap_or("global").as_bytes());
    path.extend_from_slice(b"/publishers/");
    path.extend_from_slice(publisher.as_bytes());
    path.extend_from_slice(b"/models/");
    head::push_path_segment(&mut path, h.model);
    path.push(b':');
    path.extend_from_slice(method.as_bytes());
    // Every byte written is ASCII: project and region are checked at load, the model encoded.
    let path = std::str::from_utf8(&path).unwrap_or_default();
    head::write(
        out,
        p,
        None,
        h.origin,
        path,
        h.model,
        h.body.len(),
        h.stream,
    );
    bearer(out, p);
}

/// Adds `authorization: Bearer <token>` to a head [`head::write`] finished without one.
fn bearer(out: &mut Vec<u8>, p: &Provider) {
    let Some(token) = p.token.as_ref().and_then(|t| t.get()) else {
        return; // `ready` refused the request already
    };
    out.truncate(out.len() - 2);
    out.extend_from_slice(b"authorization: Bearer ");
    out.extend_from_slice(token.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// A request cannot go before the first token arrived.
fn ready(p: &Provider) -> Result<(), GatewayError> {
    match &p.token {
        Some(t) if t.get().is_none() => Err(GatewayError::new(
            Kind::UpstreamAuth,
            format!(
                "provider {:?} has no Google access token yet: {}",
                p.name,
                t.problem()
            ),
        )),
        _ => Ok(()),
    }
}

impl Adapter for Vertex {
    fn name(&self) -> &'static str {
        "vertex"
    }

    fn wire(&self) -> Option<Wire> {
        None
    }

    fn for_model(&self, model: &str) -> Option<&'static dyn Adapter> {
        Some(if model.starts_with("claude") {
            &VertexAnthropic
        } else {
            &VertexGemini
        })
    }

    fn chat_path(&self) -> &'static str {
        VertexGemini.chat_path()
    }

    fn models_path(&self) -> &'static str {
        VertexGemini.models_path()
    }

    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        let publisher = self.for_model(stamp.model).unwrap_or(&VertexGemini);
        publisher.encode_request(r, stamp, out, dropped)
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        Gemini.decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Gemini.stream_decoder()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        Gemini.classify(status, body)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        Gemini.usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        Gemini.usage_from_event(json, data, usage)
    }
}

impl Adapter for VertexGemini {
    fn name(&self) -> &'static str {
        "vertex"
    }

    fn wire(&self) -> Option<Wire> {
        None
    }

    fn ready(&self, p: &Provider) -> Result<(), GatewayError> {
        ready(p)
    }

    fn chat_path(&self) -> &'static str {
        "/v1/projects"
    }

    /// Vertex has no cheap per-project model list; the probe asks for Google's publisher
    /// models, which any valid token may read.
    fn models_path(&self) -> &'static str {
        "/v1/publishers/google/models"
    }

    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        let method = match (h.endpoint, h.stream) {
            (Endpoint::Embeddings, _) => "predict",
            (_, true) => "streamGenerateContent?alt=sse",
            (_, false) => "generateContent",
        };
        write_head(out, h, "google", method);
    }

    fn write_models_probe(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        head::write_get(out, h.provider, None, h.origin, self.models_path());
        bearer(out, h.provider);
    }

    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        Gemini.encode_request(r, stamp, out, dropped)
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        Gemini.decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Gemini.stream_decoder()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        Gemini.classify(status, body)
    }

    fn encode_embeddings(
        &self,
        r: &EmbedRequest<'_>,
        _model: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), GatewayError> {
        embed::encode_request(r, out);
        Ok(())
    }

    fn decode_embeddings(&self, v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
        embed::decode_response(v)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        Gemini.usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        Gemini.usage_from_event(json, data, usage)
    }
}

impl Adapter for VertexAnthropic {
    fn name(&self) -> &'static str {
        "vertex"
    }

    fn wire(&self) -> Option<Wire> {
        None
    }

    fn ready(&self, p: &Provider) -> Result<(), GatewayError> {
        ready(p)
    }

    fn chat_path(&self) -> &'static str {
        "/v1/projects"
    }

    fn models_path(&self) -> &'static str {
        "/v1/publishers/anthropic/models"
    }

    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        let method = if h.stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        };
        write_head(out, h, "anthropic", method);
    }

    fn write_models_probe(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        head::write_get(out, h.provider, None, h.origin, self.models_path());
        bearer(out, h.provider);
    }

    /// Anthropic's body, with `anthropic_version` where `model` was (the model is in the path).
    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        let at = out.len();
        Anthropic.encode_request(r, stamp, out, dropped);
        let mut model = b"{\"model\":".to_vec();
        push_str(&mut model, stamp.model);
        debug_assert!(out[at..].starts_with(&model));
        let mut version = b"{\"anthropic_version\":".to_vec();
        push_str(&mut version, ANTHROPIC_VERSION);
        out.splice(at..at + model.len(), version);
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        Anthropic.decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        Anthropic.stream_decoder()
    }

    /// Vertex answers its own failures (auth, quota) in Google's shape and the model's in
    /// Anthropic's.
    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        if memchr::memmem::find(body, b"\"status\"").is_some() {
            Gemini.classify(status, body)
        } else {
            Anthropic.classify(status, body)
        }
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        Anthropic.usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        Anthropic.usage_from_event(json, data, usage)
    }
}

#[cfg(test)]
mod tests;
