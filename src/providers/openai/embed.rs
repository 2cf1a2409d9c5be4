//! OpenAI's `/v1/embeddings` in the canonical embeddings form, for a client whose target
//! speaks another protocol: the request read into an [`EmbedRequest`], the answer written back
//! from an [`EmbedResponse`] (vectors as float arrays, or base64 of little-endian f32 when the
//! client asked for `encoding_format: base64`).

use std::borrow::Cow;

use base64::Engine;
use simd_json::prelude::*;

use crate::error::{GatewayError, Kind};
use crate::json::{push_f64, push_str, push_u64};
use crate::providers::canonical::{EmbedRequest, EmbedResponse, Json};

fn bad(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, message)
}

/// Reads an embeddings request. Token-array inputs have no text to give another protocol.
pub fn decode_request<'a>(v: Json<'a>) -> Result<EmbedRequest<'a>, GatewayError> {
    let model = v
        .get("model")
        .and_then(|m| m.as_str())
        .ok_or_else(|| bad("`model` is required"))?;
    let mut input = Vec::new();
    match v.get("input") {
        Some(i) if i.as_str().is_some() => input.push(Cow::Borrowed(i.as_str().unwrap_or(""))),
        Some(i) if i.as_array().is_some() => {
            for x in i.as_array().into_iter().flatten() {
                match x.as_str() {
                    Some(s) => input.push(Cow::Borrowed(s)),
                    None => {
                        return Err(bad(
                            "`input` as token arrays cannot be translated for this model's \
                             provider; send strings",
                        ));
                    }
                }
            }
        }
        _ => return Err(bad("`input` must be a string or an array of strings")),
    }
    if input.is_empty() {
        return Err(bad("`input` must not be empty"));
    }
    let base64 = match v.get("encoding_format").and_then(|f| f.as_str()) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(bad(format!(
                "`encoding_format` must be float or base64, not {other:?}"
            )));
        }
    };
    Ok(EmbedRequest {
        model: Cow::Borrowed(model),
        input,
        dimensions: v.get("dimensions").and_then(|d| d.as_u64()),
        base64,
        user: v.get("user").and_then(|u| u.as_str()).map(Cow::Borrowed),
    })
}

/// Writes OpenAI's embeddings list for `r`, naming `model`.
pub fn encode_response(r: &EmbedResponse, model: &str, base64: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
    let mut bytes = Vec::new();
    for (i, v) in r.vectors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"object\":\"embedding\",\"index\":");
        push_u64(out, i as u64);
        out.extend_from_slice(b",\"embedding\":");
        if base64 {
            bytes.clear();
            bytes.extend(v.iter().flat_map(|f| f.to_le_bytes()));
            out.push(b'"');
            let text = base64::engine::general_purpose::STANDARD.encode(&bytes);
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        } else {
            out.push(b'[');
            for (j, f) in v.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                push_f64(out, f64::from(*f));
            }
            out.push(b']');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"model\":");
    push_str(out, model);
    out.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    push_u64(out, r.input_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    push_u64(out, r.input_tokens);
    out.extend_from_slice(b"}}");
}

/// One vector from a JSON array of numbers; `None` when it is anything else.
pub fn vector(v: Json<'_>) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.cast_f64().map(|f| f as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Vec<u8> {
        body.as_bytes().to_vec()
    }

    #[test]
    fn reads_strings_and_refuses_token_arrays() {
        let mut b = parse(
            r#"{"model":"e","input":["a","b"],"dimensions":256,"encoding_format":"base64","user":"u"}"#,
        );
        let v = simd_json::to_borrowed_value(&mut b).unwrap();
        let r = decode_request(&v).unwrap();
        assert_eq!(r.input, ["a", "b"]);
        assert_eq!((r.dimensions, r.base64), (Some(256), true));
        assert_eq!(r.user.as_deref(), Some("u"));
        let mut one = parse(r#"{"model":"e","input":"hi"}"#);
        let v = simd_json::to_borrowed_value(&mut one).unwrap();
        assert_eq!(decode_request(&v).unwrap().input, ["hi"]);
        for bad in [
            r#"{"model":"e","input":[[1,2,3]]}"#,
            r#"{"model":"e","input":[]}"#,
            r#"{"model":"e"}"#,
            r#"{"input":"x"}"#,
            r#"{"model":"e","input":"x","encoding_format":"int8"}"#,
        ] {
            let mut b = parse(bad);
            let v = simd_json::to_borrowed_value(&mut b).unwrap();
            let e = decode_request(&v).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{bad}");
        }
    }

    #[test]
    fn writes_floats_or_base64() {
        let r = EmbedResponse {
            vectors: vec![vec![0.5, -1.0], vec![0.25]],
            input_tokens: 7,
        };
        let mut out = Vec::new();
        encode_response(&r, "m", false, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"][0]["embedding"], serde_json::json!([0.5, -1.0]));
        assert_eq!(v["data"][1]["index"], 1);
        assert_eq!(v["usage"]["prompt_tokens"], 7);
        out.clear();
        encode_response(&r, "m", true, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let text = v["data"][0]["embedding"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        assert_eq!(
            bytes,
            [0.5f32.to_le_bytes(), (-1.0f32).to_le_bytes()].concat()
        );
    }
}
