//! Embeddings through Bedrock's `InvokeModel` for the two families it serves: Amazon Titan
//! (`amazon.titan-embed-*`, one text a call) and Cohere (`cohere.embed-*`, a list). The answer
//! is recognised by its shape.

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::canonical::{EmbedRequest, EmbedResponse, Json};
use crate::providers::openai::embed::vector;

fn bad(m: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, m)
}

/// The model id without a cross-region prefix (`us.`, `eu.`, `apac.`, `global.`).
fn family(model: &str) -> &str {
    match model.split_once('.') {
        Some(("us" | "eu" | "apac" | "global", rest)) => rest,
        _ => model,
    }
}

pub fn encode_request(
    r: &EmbedRequest<'_>,
    model: &str,
    out: &mut Vec<u8>,
) -> Result<(), GatewayError> {
    let m = family(model);
    if m.starts_with("amazon.titan-embed") {
        let [text] = r.input.as_slice() else {
            return Err(bad(format!(
                "{model} embeds one text per request; send one input (got {})",
                r.input.len()
            )));
        };
        out.extend_from_slice(b"{\"inputText\":");
        push_str(out, text);
        if let Some(d) = r.dimensions {
            out.extend_from_slice(b",\"dimensions\":");
            push_u64(out, d);
        }
        out.extend_from_slice(b",\"normalize\":true}");
        Ok(())
    } else if m.starts_with("cohere.embed") {
        out.extend_from_slice(b"{\"texts\":[");
        for (i, t) in r.input.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, t);
        }
        out.extend_from_slice(
            b"],\"input_type\":\"search_document\",\"embedding_types\":[\"float\"]}",
        );
        Ok(())
    } else {
        Err(bad(format!(
            "bedrock embeddings serve amazon.titan-embed-* and cohere.embed-* models, not {model}"
        )))
    }
}

pub fn decode_response(v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
    let broken = |w: &str| {
        GatewayError::new(
            Kind::UpstreamProtocol,
            format!("bedrock embeddings answer {w}"),
        )
    };
    if let Some(e) = v.get("embedding") {
        let vec = vector(e).ok_or_else(|| broken("has a vector that is not numbers"))?;
        let tokens = v
            .get("inputTextTokenCount")
            .and_then(|n| n.as_u64())
            .unwrap_or(0);
        return Ok(EmbedResponse {
            vectors: vec![vec],
            input_tokens: tokens,
        });
    }
    let e = v
        .get("embeddings")
        .ok_or_else(|| broken("has no embeddings"))?;
    let list = e.get("float").unwrap_or(e);
    let vectors = list
        .as_array()
        .ok_or_else(|| broken("has no float embeddings"))?
        .iter()
        .map(|x| vector(x).ok_or_else(|| broken("has a vector that is not numbers")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmbedResponse {
        vectors,
        input_tokens: 0,
    })
}
