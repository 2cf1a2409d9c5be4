//! Cohere's `POST /v2/embed` for an OpenAI embeddings client. Cohere's v3 and later models
//! want an `input_type`; a client of OpenAI's API has no such field, so texts are embedded as
//! `search_document` (what stored texts are, and what most callers of `/v1/embeddings` index).
//! `dimensions` becomes `output_dimension` (embed-v4 takes 256, 512, 1024 or 1536).

use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_str, push_u64};
use crate::providers::canonical::{EmbedRequest, EmbedResponse, Json};
use crate::providers::openai::embed::vector;

pub fn encode_request(r: &EmbedRequest<'_>, model: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"model\":");
    push_str(out, model);
    out.extend_from_slice(b",\"texts\":[");
    for (i, t) in r.input.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_str(out, t);
    }
    out.extend_from_slice(b"],\"input_type\":\"search_document\",\"embedding_types\":[\"float\"]");
    if let Some(d) = r.dimensions {
        out.extend_from_slice(b",\"output_dimension\":");
        push_u64(out, d);
    }
    out.push(b'}');
}

fn broken(what: &str) -> GatewayError {
    GatewayError::new(
        Kind::UpstreamProtocol,
        format!("cohere embed answer {what}"),
    )
}

/// `embeddings.float` (the typed form asked for), or a bare list (the v1 form).
pub fn decode_response(v: Json<'_>) -> Result<EmbedResponse, GatewayError> {
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
    let input_tokens = v
        .get("meta")
        .and_then(|m| m.get("billed_units"))
        .and_then(|b| b.get("input_tokens"))
        .and_then(|n| n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0);
    Ok(EmbedResponse {
        vectors,
        input_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn texts_go_out_as_documents_and_floats_come_back() {
        let r = EmbedRequest {
            model: Cow::Borrowed("alias"),
            input: vec![Cow::Borrowed("a \"b\""), Cow::Borrowed("c")],
            dimensions: Some(256),
            ..EmbedRequest::default()
        };
        let mut out = Vec::new();
        encode_request(&r, "embed-v4.0", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"model":"embed-v4.0","texts":["a \"b\"","c"],
                "input_type":"search_document","embedding_types":["float"],"output_dimension":256})
        );
        let mut body = br#"{"id":"x","embeddings":{"float":[[0.5,1],[-2.0]]},"texts":["a","c"],"meta":{"billed_units":{"input_tokens":4.0}}}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut body).unwrap();
        let e = decode_response(&v).unwrap();
        assert_eq!(e.vectors, vec![vec![0.5, 1.0], vec![-2.0]]);
        assert_eq!(e.input_tokens, 4);
        let mut bad = br#"{"embeddings":{"float":[["x"]]}}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut bad).unwrap();
        assert_eq!(
            decode_response(&v).unwrap_err().kind,
            Kind::UpstreamProtocol
        );
    }
}
