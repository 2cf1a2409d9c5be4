//! What the gateway knows of one wire protocol, in one place. As an upstream ([`Adapter`]) it
//! builds requests (the same-protocol splice, or an encoding of the canonical form), reads
//! answers, streams and usage, and classifies failures; a protocol clients also speak is an
//! [`Ingress`] too: it decodes requests and encodes answers, streams and errors in the client's
//! shape. Adapters do no I/O. [`Protocol::adapter`](super::Protocol::adapter) is the only
//! match on the protocol, [`Wire::ingress`] the only one on an ingress's wire.

use super::canonical::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Event, Json, Stamp,
};
use super::translate::Wire;
use super::{Endpoint, Usage, head};
use crate::config::{Origin, Provider, Secret};
use crate::error::{GatewayError, Kind};
use crate::pipeline::decode::{Decoded, Decoder};

/// A same-protocol upstream request: the client's own body, with what the splice changes.
pub struct Splice<'a> {
    pub provider: &'a Provider,
    /// The target's own key, or the provider's.
    pub api_key: Option<&'a Secret>,
    pub origin: &'a Origin,
    pub endpoint: Endpoint,
    pub body: &'a [u8],
    pub decoded: &'a Decoded,
    pub model: &'a str,
}

/// A translated request's head: everything [`Adapter::write_head`] needs but the adapter.
pub struct Head<'a> {
    pub provider: &'a Provider,
    /// The target's own key, or the provider's.
    pub api_key: Option<&'a Secret>,
    pub origin: &'a Origin,
    /// [`Endpoint::Chat`] or [`Endpoint::Embeddings`].
    pub endpoint: Endpoint,
    /// The target's model.
    pub model: &'a str,
    /// The encoded body (signers hash it; everyone states its length).
    pub body: &'a [u8],
    pub stream: bool,
    /// Unix seconds (a signature covers the time).
    pub now: u64,
}

/// How an upstream frames a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: the decoder gets each event's `data`.
    Sse,
    /// AWS's `application/vnd.amazon.eventstream` binary frames: the decoder gets each frame
    /// as `{"<:event-type>":<payload>}` (an exception as `{"<:exception-type>":<payload>}`).
    EventStream,
}

/// Decodes an upstream's stream one SSE event's data at a time into canonical events.
pub trait StreamDecode {
    /// `data` is parsed in place.
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError>;
}

/// Encodes canonical events as the client's stream events.
pub trait StreamEncode {
    fn encode(&mut self, ev: &Event<'_>, out: &mut Vec<u8>);
}

/// One wire protocol, as the gateway speaks it to an upstream.
pub trait Adapter: Sync {
    /// As config and messages name it.
    fn name(&self) -> &'static str;
    /// The ingress wire it is, if clients speak it too: a client of that wire gets the
    /// upstream's own bytes. `None`: every request is translated.
    fn wire(&self) -> Option<Wire>;

    // --- as an upstream ---

    /// The adapter one of its models needs, when its models differ in shape (Vertex AI's
    /// publishers); `None`: this one serves every model.
    fn for_model(&self, _model: &str) -> Option<&'static dyn Adapter> {
        None
    }
    /// Whether a request can go now: credentials that arrive while the gateway runs (a
    /// refreshed token) may not have arrived yet.
    fn ready(&self, _provider: &Provider) -> Result<(), GatewayError> {
        Ok(())
    }

    /// Whether its requests go to the in-process transport (the built-in mock) rather than
    /// over the network.
    fn local(&self) -> bool {
        false
    }
    /// Whether it counts tokens itself (`/v1/messages/count_tokens`); else the gateway
    /// estimates.
    fn counts_tokens(&self) -> bool {
        false
    }
    /// The chat path under the provider's base URL.
    fn chat_path(&self) -> &'static str;
    /// The model listing a health probe asks for.
    fn models_path(&self) -> &'static str;
    /// Whether the endpoint lists models at all; one that does not (Bedrock's runtime) is
    /// probed with the smallest chat even where `probe: models` is configured.
    fn lists_models(&self) -> bool {
        true
    }
    /// Writes a same-protocol request (head and body) into `out`; returns whether the
    /// gateway asked for stream usage the client did not (so that event is held back). Only
    /// called when [`Adapter::wire`] is some: a protocol no client speaks never splices.
    fn splice(&self, _out: &mut Vec<u8>, _s: &Splice<'_>) -> bool {
        false
    }
    /// Writes a translated request's head (request line, host, framing, auth, up to the blank
    /// line) for `h.body`. The default is a POST to [`Adapter::chat_path`] with the vendor's
    /// auth header.
    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        head::write(
            out,
            h.provider,
            h.api_key,
            h.origin,
            self.chat_path(),
            h.model,
            h.body.len(),
            h.stream,
        );
    }
    /// Writes a health probe's `GET` of [`Adapter::models_path`] (`h.body` is empty).
    fn write_models_probe(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        head::write_get(out, h.provider, h.api_key, h.origin, self.models_path());
    }
    /// How its streams are framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }
    /// Writes the upstream body of an embeddings request for `model`.
    fn encode_embeddings(
        &self,
        _r: &EmbedRequest<'_>,
        _model: &str,
        _out: &mut Vec<u8>,
    ) -> Result<(), GatewayError> {
        Err(GatewayError::new(
            Kind::BadRequest,
            format!("protocol {} has no embeddings endpoint", self.name()),
        ))
    }
    /// Reads a whole 2xx embeddings answer.
    fn decode_embeddings(&self, _v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
        Err(GatewayError::new(
            Kind::UpstreamProtocol,
            format!("protocol {} has no embeddings endpoint", self.name()),
        ))
    }
    /// Writes the upstream body for a canonical request, naming what it cannot carry.
    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    );
    /// Reads a whole 2xx answer into the canonical form.
    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError>;
    fn stream_decoder(&self) -> Box<dyn StreamDecode>;
    /// Classifies a non-2xx answer from its own error body.
    fn classify(&self, status: u16, body: &[u8]) -> GatewayError;
    /// Seconds until the limit that refused a request (429) resets, from the provider's own
    /// rate-limit headers (lowercase names), when it sent no `Retry-After`.
    fn retry_after(&self, _headers: &[(String, String)], _now_ms: i64) -> Option<u64> {
        None
    }
    /// Usage of a whole same-protocol answer.
    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage>;
    /// Folds one same-protocol stream event's usage into `usage`; true when the event carries
    /// nothing but usage (a client that did not ask for it is not sent it).
    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool;
}

/// One wire protocol, as clients speak it to the gateway.
pub trait Ingress: Sync {
    fn decode_request<'a>(&self, v: Json<'a>) -> Result<ChatRequest<'a>, GatewayError>;
    fn encode_response(&self, r: &ChatResponse<'_>, stamp: &Stamp<'_>, out: &mut Vec<u8>);
    fn stream_encoder(&self, stamp: &Stamp<'_>, include_usage: bool) -> Box<dyn StreamEncode>;
    /// The error JSON a client of this protocol expects.
    fn error_body(&self, e: &GatewayError, out: &mut Vec<u8>);
    /// An in-band error event, for a stream already under way.
    fn error_event(&self, e: &GatewayError, out: &mut Vec<u8>);
    /// Whether its rate-limit headers are Anthropic's (`anthropic-ratelimit-*`) rather than
    /// OpenAI's (`x-ratelimit-*`).
    fn anthropic_rate_headers(&self) -> bool {
        false
    }
}
