//! Vertex AI text embeddings (`:predict` on a Google embedding model): one instance per input,
//! `outputDimensionality` for `dimensions`; each prediction reports its own token count.

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::canonical::{EmbedRequest, EmbedResponse, Json};
use crate::providers::openai::embed::vector;

pub fn encode_request(r: &EmbedRequest<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"instances\":[");
    for (i, t) in r.input.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"content\":");
        push_str(out, t);
        out.push(b'}');
    }
    out.push(b']');
    if let Some(d) = r.dimensions {
        out.extend_from_slice(b",\"parameters\":{\"outputDimensionality\":");
        push_u64(out, d);
        out.push(b'}');
    }
    out.push(b'}');
}

pub fn decode_response(v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
    let broken = |what: &str| {
        GatewayError::new(
            Kind::UpstreamProtocol,
            format!("vertex predict answer {what}"),
        )
    };
    let predictions = v
        .get("predictions")
        .and_then(|p| p.as_array())
        .ok_or_else(|| broken("has no predictions"))?;
    let mut out = EmbedResponse::default();
    for p in predictions {
        let e = p
            .get("embeddings")
            .ok_or_else(|| broken("has a prediction without embeddings"))?;
        let values = e
            .get("values")
            .and_then(vector)
            .ok_or_else(|| broken("has embeddings without values"))?;
        out.vectors.push(values);
        out.input_tokens += e
            .get("statistics")
            .and_then(|s| s.get("token_count"))
            .and_then(|n| n.cast_f64())
            .map_or(0, |n| n.max(0.0) as u64);
    }
    Ok(out)
}
