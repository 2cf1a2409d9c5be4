//! Small JSON writing and reading helpers the request encoders and answer decoders of more
//! than one protocol share (OpenAI's and Cohere's bodies have the same shapes in places).

use std::borrow::Cow;

use simd_json::prelude::*;

use super::canonical::{ChatRequest, Json, Part};
use crate::json::{push_escaped, push_f64, push_str};

/// `,"name":` — the next member of an object already opened with one member.
pub fn key(out: &mut Vec<u8>, name: &str) {
    out.push(b',');
    push_str(out, name);
    out.push(b':');
}

/// `,"name":v` when `v` is set.
pub fn float_field(out: &mut Vec<u8>, name: &str, v: Option<f64>) {
    // A non-finite number has no JSON form; it cannot come from a parsed body anyway.
    if let Some(v) = v.filter(|v| v.is_finite()) {
        key(out, name);
        push_f64(out, v);
    }
}

/// The separators of one JSON array or object being written.
#[derive(Default)]
pub struct Commas(bool);

impl Commas {
    pub fn next(&mut self, out: &mut Vec<u8>) {
        if self.0 {
            out.push(b',');
        }
        self.0 = true;
    }

    /// Whether a member was written.
    pub fn any(&self) -> bool {
        self.0
    }
}

/// Writes the text parts among `parts` as one JSON string, joined by a blank line.
pub fn push_texts(out: &mut Vec<u8>, parts: &[Part<'_>]) {
    out.push(b'"');
    let mut first = true;
    for p in parts {
        if let Part::Text(t) = p {
            if !first {
                out.extend_from_slice(b"\\n\\n");
            }
            first = false;
            push_escaped(out, t.as_bytes());
        }
    }
    out.push(b'"');
}

/// A tool call's `arguments` under `f`: JSON text, as OpenAI and Cohere send it (some
/// compatible servers send an object, which is written back out as text).
pub fn arguments_of<'a>(f: Option<Json<'a>>) -> Cow<'a, str> {
    match f.and_then(|f| f.get("arguments")) {
        Some(a) if a.is_str() => Cow::Borrowed(a.as_str().unwrap_or_default()),
        Some(a) if a.is_object() => Cow::Owned(a.encode()),
        _ => Cow::Borrowed("{}"),
    }
}

/// The system prompt as a leading `{"role":"system"}` message, its parts joined by a blank
/// line (OpenAI's and Cohere's shape); nothing when there is none.
pub fn system_message(r: &ChatRequest<'_>, c: &mut Commas, out: &mut Vec<u8>) {
    if r.system.is_empty() {
        return;
    }
    c.next(out);
    out.extend_from_slice(b"{\"role\":\"system\",\"content\":\"");
    for (i, s) in r.system.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\\n\\n");
        }
        push_escaped(out, s.as_bytes());
    }
    out.extend_from_slice(b"\"}");
}
