//! Gemini's `batchEmbedContents` for an OpenAI embeddings client: one request per input, each
//! naming the model, `outputDimensionality` for `dimensions`. Gemini reports no token counts.

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::canonical::{EmbedRequest, EmbedResponse, Json};
use crate::providers::openai::embed::vector;

pub fn encode_request(r: &EmbedRequest<'_>, model: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"requests\":[");
    let mut name = String::with_capacity(model.len() + 7);
    name.push_str("models/");
    name.push_str(model);
    for (i, t) in r.input.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"model\":");
        push_str(out, &name);
        out.extend_from_slice(b",\"content\":{\"parts\":[{\"text\":");
        push_str(out, t);
        out.extend_from_slice(b"}]}");
        if let Some(d) = r.dimensions {
            out.extend_from_slice(b",\"outputDimensionality\":");
            push_u64(out, d);
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

pub fn decode_response(v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
    let broken = |what: &str| {
        GatewayError::new(
            Kind::UpstreamProtocol,
            format!("gemini embeddings answer {what}"),
        )
    };
    let list = v
        .get("embeddings")
        .and_then(|e| e.as_array())
        .ok_or_else(|| broken("has no embeddings"))?;
    let vectors = list
        .iter()
        .map(|e| {
            e.get("values")
                .and_then(vector)
                .ok_or_else(|| broken("has no values"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmbedResponse {
        vectors,
        input_tokens: 0,
    })
}
