//! Embedding answers in the shapes other than OpenAI's (`responses.rs` has that one): Cohere
//! v2 `/v2/embed`, Gemini `embedContent` and `batchEmbedContents`, Vertex AI text-embedding
//! `predict`, and Bedrock `invoke` for Titan and Cohere embedding models. Every vector is
//! `responses::vector`'s deterministic floats, one per input the body names (or, for a model named
//! `…words…`, the bag of words of that input's text: `words.rs`); token counts are the body's
//! estimate shared out between the inputs.

use super::request::Body;
use super::responses::{Meta, json_str, num};
use super::words::Source;

/// Which embedding shape a route answers in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Embed {
    /// Cohere v2 `POST /v2/embed`.
    Cohere,
    /// Gemini `:embedContent` (one input).
    GeminiOne,
    /// Gemini `:batchEmbedContents` (one per `requests` entry).
    GeminiBatch,
    /// Vertex AI `:predict` (one per `instances` entry).
    VertexPredict,
    /// Bedrock `/model/{id}/invoke` for `amazon.titan-embed*` (`inputText`).
    Titan,
    /// Bedrock `/model/{id}/invoke` for `cohere.embed*` (`texts`).
    BedrockCohere,
}

fn texts(out: &mut Vec<u8>, texts: &[String]) {
    out.push(b'[');
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, t);
    }
    out.push(b']');
}

fn vectors(out: &mut Vec<u8>, src: Source, count: u64, dims: u64, wrap: (&[u8], &[u8])) {
    out.push(b'[');
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(wrap.0);
        src.vector(out, i, dims);
        out.extend_from_slice(wrap.1);
    }
    out.push(b']');
}

/// Cohere's integer types (`int8`, `uint8`, `binary`, `ubinary`): small integers in range.
fn int_vectors(out: &mut Vec<u8>, count: u64, dims: u64) {
    out.push(b'[');
    for i in 0..count {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for j in 0..dims {
            if j > 0 {
                out.push(b',');
            }
            num(out, (i * 31 + j * 17) % 127);
        }
        out.push(b']');
    }
    out.push(b']');
}

/// The answer of `kind` for body `b`, or the message of a 400 when the body names no input.
pub(crate) fn body(
    out: &mut Vec<u8>,
    kind: Embed,
    m: &Meta,
    b: &Body,
    dims: u64,
    src: Source,
) -> Result<(), String> {
    let missing = |what: &str| Err(format!("mock: embedding request without {what}"));
    match kind {
        Embed::Cohere | Embed::BedrockCohere => {
            let Some(t) = &b.texts else {
                return missing("texts");
            };
            let n = t.len() as u64;
            out.extend_from_slice(b"{\"id\":\"mock-");
            num(out, m.id);
            out.extend_from_slice(b"\",\"embeddings\":");
            if kind == Embed::BedrockCohere {
                vectors(out, src, n, dims, (b"", b""));
                out.extend_from_slice(b",\"response_type\":\"embeddings_floats\"");
            } else {
                out.push(b'{');
                let float = ["float".to_string()];
                let types = b.embedding_types.as_deref().unwrap_or(&float);
                for (k, ty) in types.iter().enumerate() {
                    if k > 0 {
                        out.push(b',');
                    }
                    json_str(out, ty);
                    out.push(b':');
                    if ty == "float" {
                        vectors(out, src, n, dims, (b"", b""));
                    } else {
                        int_vectors(out, n, dims);
                    }
                }
                out.extend_from_slice(b"},\"response_type\":\"embeddings_by_type\"");
            }
            out.extend_from_slice(b",\"texts\":");
            texts(out, t);
            if kind == Embed::Cohere {
                out.extend_from_slice(
                    b",\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"input_tokens\":",
                );
                num(out, m.prompt_tokens);
                out.extend_from_slice(b"}}");
            }
            out.push(b'}');
        }
        Embed::GeminiOne => {
            out.extend_from_slice(b"{\"embedding\":{\"values\":");
            src.vector(out, 0, dims);
            out.extend_from_slice(b"}}");
        }
        Embed::GeminiBatch => {
            let Some(r) = &b.requests else {
                return missing("requests");
            };
            out.extend_from_slice(b"{\"embeddings\":");
            vectors(out, src, r.len() as u64, dims, (b"{\"values\":", b"}"));
            out.push(b'}');
        }
        Embed::VertexPredict => {
            let Some(inst) = &b.instances else {
                return missing("instances");
            };
            let n = inst.len() as u64;
            let each = (m.prompt_tokens / n.max(1)).max(1);
            out.extend_from_slice(b"{\"predictions\":[");
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"embeddings\":{\"values\":");
                src.vector(out, i, dims);
                out.extend_from_slice(b",\"statistics\":{\"token_count\":");
                num(out, each);
                out.extend_from_slice(b",\"truncated\":false}}}");
            }
            out.extend_from_slice(b"],\"metadata\":{\"billableCharacterCount\":");
            num(out, m.prompt_tokens.saturating_mul(4));
            out.extend_from_slice(b"}}");
        }
        Embed::Titan => {
            if b.input_text.is_none() {
                return missing("inputText");
            }
            out.extend_from_slice(b"{\"embedding\":");
            src.vector(out, 0, dims);
            out.extend_from_slice(b",\"inputTextTokenCount\":");
            num(out, m.prompt_tokens);
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::reply::Reply;
    use serde_json::Value;

    fn answer(kind: Embed, body: &str) -> Result<Value, String> {
        let b = Body::parse(body.as_bytes()).unwrap();
        let m = Meta::new(9, "e", body.len(), &Reply::text(0));
        let mut out = Vec::new();
        body_of(&mut out, kind, &m, &b)?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    fn body_of(out: &mut Vec<u8>, kind: Embed, m: &Meta, b: &Body) -> Result<(), String> {
        body(out, kind, m, b, 4, Source::Index)
    }

    #[test]
    fn each_shape() {
        let v = answer(
            Embed::Cohere,
            r#"{"texts":["a","b"],"embedding_types":["float","int8"]}"#,
        )
        .unwrap();
        assert_eq!(v["embeddings"]["float"].as_array().unwrap().len(), 2);
        assert_eq!(v["embeddings"]["int8"][1].as_array().unwrap().len(), 4);
        assert_eq!(v["texts"][1], "b");
        assert!(v["meta"]["billed_units"]["input_tokens"].as_u64().unwrap() > 0);
        let v = answer(
            Embed::BedrockCohere,
            r#"{"texts":["a"],"input_type":"search_query"}"#,
        )
        .unwrap();
        assert_eq!(v["response_type"], "embeddings_floats");
        assert_eq!(v["embeddings"][0].as_array().unwrap().len(), 4);
        let v = answer(Embed::GeminiBatch, r#"{"requests":[{},{},{}]}"#).unwrap();
        assert_eq!(v["embeddings"][2]["values"].as_array().unwrap().len(), 4);
        let v = answer(Embed::GeminiOne, r#"{"content":{"parts":[{"text":"x"}]}}"#).unwrap();
        assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 4);
        let v = answer(
            Embed::VertexPredict,
            r#"{"instances":[{"content":"x"},{"content":"y"}]}"#,
        )
        .unwrap();
        assert_eq!(
            v["predictions"][1]["embeddings"]["statistics"]["truncated"],
            false
        );
        let v = answer(Embed::Titan, r#"{"inputText":"hello"}"#).unwrap();
        assert_eq!(v["embedding"].as_array().unwrap().len(), 4);
        assert!(v["inputTextTokenCount"].as_u64().unwrap() > 0);
        assert!(
            answer(Embed::Titan, "{}")
                .unwrap_err()
                .contains("inputText")
        );
        assert!(answer(Embed::Cohere, "{}").is_err());
    }
}
