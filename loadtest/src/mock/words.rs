//! Text-dependent embeddings, for tests of a semantic cache: when the upstream model's name
//! contains `words` (`text-embedding-words`), each input's vector is a bag of its words — the
//! lower-cased alphanumeric runs, each hashed (FNV-1a, 64 bits) to one of `dims` dimensions,
//! counts added, the sum L2-normalised. Identical texts, or texts differing only in case and
//! punctuation, embed to cosine 1.0; one word in six changed gives 5/6 ≈ 0.83 when no two
//! words share a dimension (ask for enough `dimensions`, say 256: at the default 8 words
//! collide often). A text with no words embeds as zeros. Every other model keeps the
//! per-index vectors of [`super::responses::vector`].

use std::io::Write;

use super::embed::Embed;
use super::responses::vector;

/// Where an embedding answer's vectors come from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Source<'a> {
    /// Vector `i` depends on `i` alone.
    Index,
    /// Vector `i` is the bag of words of text `i` (an input past the list: by index).
    Words(&'a [String]),
}

impl Source<'_> {
    pub fn vector(self, out: &mut Vec<u8>, i: u64, dims: u64) {
        match self {
            Source::Words(texts) if (i as usize) < texts.len() => {
                bag(out, &texts[i as usize], dims)
            }
            _ => vector(out, i, dims),
        }
    }
}

/// Whether `model` asks for text-dependent vectors.
pub(crate) fn wanted(model: &str) -> bool {
    model.contains("words")
}

fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The bag-of-words counts of `text` over `dims` dimensions, unnormalised.
pub(crate) fn counts(text: &str, dims: u64) -> Vec<f64> {
    let mut v = vec![0.0; dims as usize];
    let words = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    for w in words {
        let lower = w.to_lowercase();
        v[(fnv1a(lower.bytes()) % dims) as usize] += 1.0;
    }
    v
}

/// `text`'s unit vector as a JSON array.
fn bag(out: &mut Vec<u8>, text: &str, dims: u64) {
    let v = counts(text, dims);
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    out.push(b'[');
    for (j, x) in v.iter().enumerate() {
        if j > 0 {
            out.push(b',');
        }
        if *x == 0.0 {
            out.push(b'0');
        } else {
            let _ = write!(out, "{}", (x / norm) as f32);
        }
    }
    out.push(b']');
}

/// The texts an embedding request of shape `kind` (`None`: OpenAI's) names, in order; a token
/// array counts as the text of its numbers. `None` when the body is not what the shape wants
/// (the answer then says so, or uses the per-index vectors).
pub(crate) fn texts(body: &[u8], kind: Option<Embed>) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let parts = |c: &serde_json::Value| {
        let parts = c.get("parts").and_then(|p| p.as_array());
        let texts = parts.into_iter().flatten().filter_map(|p| p.get("text"));
        texts.map(s).collect::<Vec<_>>().join(" ")
    };
    let list = |v: Option<&serde_json::Value>, f: &dyn Fn(&serde_json::Value) -> String| {
        v.and_then(|l| l.as_array())
            .map(|l| l.iter().map(f).collect::<Vec<_>>())
    };
    match kind {
        None => match v.get("input")? {
            serde_json::Value::Array(a) if a.iter().all(|e| e.is_number()) => {
                Some(vec![s(&v["input"])])
            }
            serde_json::Value::Array(a) => Some(a.iter().map(s).collect()),
            one => Some(vec![s(one)]),
        },
        Some(Embed::Cohere | Embed::BedrockCohere) => list(v.get("texts"), &s),
        Some(Embed::GeminiOne) => Some(vec![parts(v.get("content")?)]),
        Some(Embed::GeminiBatch) => list(v.get("requests"), &|r| {
            r.get("content").map(parts).unwrap_or_default()
        }),
        Some(Embed::VertexPredict) => list(v.get("instances"), &|i| {
            i.get("content").map(s).unwrap_or_default()
        }),
        Some(Embed::Titan) => Some(vec![s(v.get("inputText")?)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str, dims: u64) -> Vec<f64> {
        let mut out = Vec::new();
        bag(&mut out, text, dims);
        serde_json::from_slice(&out).unwrap()
    }

    fn cos(a: &str, b: &str, dims: u64) -> f64 {
        let (a, b) = (unit(a, dims), unit(b, dims));
        a.iter().zip(&b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_follow_the_words() {
        let q = "How do I reverse a list?";
        assert!((cos(q, q, 256) - 1.0).abs() < 1e-6);
        assert!((cos(q, "how DO i reverse, a list", 256) - 1.0).abs() < 1e-6);
        let s = cos(q, "How do I reverse a string?", 256);
        assert!(s < 0.9, "{s}");
        // Six distinct words in six dimensions here: one changed leaves five of six.
        assert!((s - 5.0 / 6.0).abs() < 1e-6, "{s}");
        let n: f64 = unit(q, 256).iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-6);
        assert_eq!(unit("", 4), vec![0.0; 4]);
        assert_eq!(unit(q, 8).len(), 8);
    }

    #[test]
    fn inputs_per_shape() {
        let t = |body: &str, kind| texts(body.as_bytes(), kind).unwrap();
        assert_eq!(t(r#"{"input":"a b"}"#, None), ["a b"]);
        assert_eq!(t(r#"{"input":["a","b"]}"#, None), ["a", "b"]);
        assert_eq!(t(r#"{"input":[1,2]}"#, None), ["[1,2]"]);
        assert_eq!(t(r#"{"texts":["x","y"]}"#, Some(Embed::Cohere)), ["x", "y"]);
        let g = r#"{"requests":[{"content":{"parts":[{"text":"p"},{"text":"q"}]}},{}]}"#;
        assert_eq!(t(g, Some(Embed::GeminiBatch)), ["p q", ""]);
        let one = r#"{"content":{"parts":[{"text":"p"}]}}"#;
        assert_eq!(t(one, Some(Embed::GeminiOne)), ["p"]);
        let v = r#"{"instances":[{"content":"c"}]}"#;
        assert_eq!(t(v, Some(Embed::VertexPredict)), ["c"]);
        assert_eq!(t(r#"{"inputText":"i"}"#, Some(Embed::Titan)), ["i"]);
        assert!(texts(b"{nope", None).is_none());
        assert!(wanted("text-embedding-words") && !wanted("text-embedding-3-small"));
    }
}
