//! The Cohere v2 chat protocol (`POST /v2/chat`), an upstream only: no client speaks it, so
//! every request is translated through [`super::canonical`] and nothing is spliced. `upstream`
//! writes the request and reads whole answers and error bodies; `stream` reads the typed SSE
//! events. Usage is read here, where both share it.
//!
//! Cohere counts tokens two ways: `usage.tokens` (what the model read and wrote, its own prompt
//! template included) and `usage.billed_units` (what is charged). [`Usage`] takes the first,
//! the second only where the first is missing. `cached_tokens`, when sent, is the share of the
//! input read from Cohere's prompt cache.

mod embed;
mod stream;
pub mod upstream;

pub use stream::StreamDecoder;

use simd_json::prelude::*;

use super::adapter::{Adapter, Head, StreamDecode};
use super::canonical::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Event, Json, Stamp,
};
use super::translate::Wire;
use super::{Endpoint, Usage, head};
use crate::error::GatewayError;
use crate::pipeline::decode::Decoder;

/// Cohere's chat API, v2.
pub struct Cohere;

impl StreamDecode for StreamDecoder {
    fn decode(
        &mut self,
        data: &mut [u8],
        emit: &mut dyn FnMut(Event<'_>),
    ) -> Result<(), GatewayError> {
        StreamDecoder::decode(self, data, emit)
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

    fn write_head(&self, out: &mut Vec<u8>, h: &Head<'_>) {
        let path = match h.endpoint {
            Endpoint::Embeddings => "/v2/embed",
            _ => self.chat_path(),
        };
        let len = h.body.len();
        head::write(
            out, h.provider, h.api_key, h.origin, path, h.model, len, h.stream,
        );
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

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        usage_from_event(json, data, usage);
        // `message-end` carries the finish reason too: never an event of usage alone.
        false
    }
}

// === usage ===

/// One token count. The schema types counts as numbers, and Cohere's SDKs show them as
/// floats (`37.0`), so both forms are read.
fn count(x: &impl ValueAsScalar) -> Option<u64> {
    x.as_u64().or_else(|| {
        x.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })
}

/// Usage from the counts of one `usage` object: `n(holder, key)` reads
/// `usage.<holder>.<key>`, `cached` is `usage.cached_tokens`.
fn usage_from(n: impl Fn(&str, &str) -> Option<u64>, cached: Option<u64>) -> Usage {
    let side = |key: &str| {
        n("tokens", key)
            .or_else(|| n("billed_units", key))
            .unwrap_or(0)
    };
    let input = side("input_tokens");
    Usage {
        input,
        output: side("output_tokens"),
        cache_read: cached.unwrap_or(0).min(input),
        cache_write: 0,
        reasoning: 0,
    }
}

fn usage_of_tape(u: simd_json::tape::Value<'_, '_>) -> Option<Usage> {
    u.is_object().then(|| {
        usage_from(
            |holder, key| u.get(holder)?.get(key).and_then(|x| count(&x)),
            u.get("cached_tokens").and_then(|x| count(&x)),
        )
    })
}

/// Usage from a whole `/v2/chat` answer.
pub fn usage_from_body(json: &mut Decoder, body: &[u8]) -> Option<Usage> {
    memchr::memmem::find(body, b"\"usage\"")?;
    json.parse(body, |v| usage_of_tape(v.get("usage")?))
        .flatten()
}

/// Reads the usage of a `message-end` event (the only one that carries any) into `usage`.
pub fn usage_from_event(json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) {
    if memchr::memmem::find(data, b"\"usage\"").is_none() {
        return;
    }
    let found = json.parse(data, |v| {
        let end = v
            .get("type")
            .is_some_and(|t| t.as_str() == Some("message-end"));
        if !end {
            return None;
        }
        usage_of_tape(v.get("delta")?.get("usage")?)
    });
    if let Some(Some(u)) = found {
        *usage = Some(u);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_prefers_tokens_to_billed_units_and_reads_floats() {
        let mut d = Decoder::default();
        let body = br#"{"id":"r","usage":{"billed_units":{"input_tokens":37,"output_tokens":28},"tokens":{"input_tokens":913.0,"output_tokens":83.0},"cached_tokens":512}}"#;
        assert_eq!(
            usage_from_body(&mut d, body),
            Some(Usage {
                input: 913,
                output: 83,
                cache_read: 512,
                cache_write: 0,
                reasoning: 0,
            })
        );
        let billed = br#"{"usage":{"billed_units":{"input_tokens":5,"output_tokens":2}}}"#;
        let u = usage_from_body(&mut d, billed).unwrap();
        assert_eq!((u.input, u.output, u.cache_read), (5, 2, 0));
        assert_eq!(usage_from_body(&mut d, br#"{"id":"r"}"#), None);
        assert_eq!(usage_from_body(&mut d, br#"{"usage":null}"#), None);
    }

    #[test]
    fn stream_usage_comes_from_message_end_only() {
        let mut d = Decoder::default();
        let mut u = None;
        usage_from_event(
            &mut d,
            br#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"\"usage\""}}}}"#,
            &mut u,
        );
        assert_eq!(u, None);
        usage_from_event(
            &mut d,
            br#"{"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":3,"output_tokens":9},"tokens":{"input_tokens":70,"output_tokens":9}}}}"#,
            &mut u,
        );
        assert_eq!(u.map(|u| (u.input, u.output)), Some((70, 9)));
        assert!(!Cohere.usage_from_event(&mut d, b"{}", &mut u));
    }

    #[test]
    fn the_adapter_is_translated_only() {
        assert_eq!(Cohere.name(), "cohere");
        assert_eq!(Cohere.wire(), None);
        assert_eq!(Cohere.chat_path(), "/v2/chat");
        assert_eq!(Cohere.models_path(), "/v1/models");
        assert!(!Cohere.local() && !Cohere.counts_tokens());
    }
}
