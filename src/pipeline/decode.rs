//! The decode stage: parse a request body once with simd-json into per-connection arena
//! storage, type only the fields the gateway acts on, and remember *where* they are in the
//! original bytes so a same-protocol upstream gets the client's own bytes with only `model`
//! (and, for streams, `stream_options`) spliced.
//!
//! simd-json unescapes strings in place, each starting at its original offset, so the offset of
//! a borrowed key or value in the arena copy is its offset in the client's body.

use std::ops::Range;

use bumpalo::Bump;
use simd_json::prelude::*;
use simd_json::{Buffers, Tape};

use crate::error::{GatewayError, Kind};
use crate::providers::family;

/// Per-connection parser state, reused by every request on the connection.
pub struct Decoder {
    arena: Bump,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            arena: Bump::with_capacity(8 * 1024),
            buffers: Buffers::new(4 * 1024),
            tape: Some(Tape::null().reset()),
        }
    }
}

/// What the gateway needs from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The `model` string's content, between its quotes, in the body.
    pub model: Range<usize>,
    /// The alias when the raw string contains escapes (rare); otherwise read `model` raw.
    pub model_unescaped: Option<String>,
    pub stream: bool,
    pub stream_options: StreamOptions,
    /// Offset of the body's opening `{`.
    pub open: usize,
    /// The end user, for routing rules: OpenAI `user` or Anthropic `metadata.user_id` (the
    /// string's content in the body; strings with escapes are not matched).
    pub user: Option<Range<usize>>,
    /// `max_tokens` (or `max_completion_tokens`), for cost estimates.
    pub max_tokens: Option<u64>,
    /// Where each of [`family::REJECTABLE`]'s fields is, when present: the member's span from
    /// its key's opening quote to the end of its value.
    pub rejectable: [Option<Range<usize>>; family::REJECTABLE.len()],
    /// The body's part of the cache key, when the alias caches (see `cache::key`).
    pub digest: Option<[u64; 2]>,
    /// The gateway's own `cache` member: what it asks, and its span (key's opening quote to
    /// the end of its value), which no upstream is sent.
    pub cache: Option<(Box<crate::cache::Directives>, Range<usize>)>,
    /// More than one choice asked for (`n` > 1): the cache keeps single answers only.
    pub many_choices: bool,
    /// The last user turn and the hash of the rest, when the alias's cache is semantic.
    pub semantic: Option<Box<crate::cache::semantic::Split>>,
}

/// What the cache needs from a body, by its alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keying {
    Off,
    /// The exact key's hash.
    Exact,
    /// That, and the last user turn split from its context, read as this protocol.
    Semantic(crate::providers::translate::Wire),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOptions {
    Absent,
    /// `stream_options.include_usage` is `true` already.
    IncludeUsage,
    /// An object without `include_usage: true`: `open` is its `{`, `value` the span of an
    /// `include_usage` member's value if there is one.
    Object {
        open: usize,
        empty: bool,
        value: Option<Range<usize>>,
    },
    /// Some other value (e.g. `null`), spanning this range.
    Other(Range<usize>),
}

impl Decoded {
    pub fn alias<'a>(&'a self, body: &'a [u8]) -> &'a str {
        match &self.model_unescaped {
            Some(s) => s,
            // The tape validated the body as UTF-8 and `model` as a string without escapes.
            None => std::str::from_utf8(&body[self.model.clone()]).unwrap_or_default(),
        }
    }
}

fn bad(msg: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::BadRequest, msg)
}

impl Decoder {
    /// Memory the parser keeps between bodies (its arena's chunks).
    pub fn retained_bytes(&mut self) -> usize {
        self.arena.allocated_bytes()
    }

    /// Parses `json` into the arena with the reused buffers and tape, and runs `f` on the tape.
    /// `f` also gets the arena copy's address: a borrowed string's offset from it is its offset
    /// in `json`.
    fn with_tape<R>(
        &mut self,
        json: &[u8],
        f: impl for<'t> FnOnce(&Tape<'t>, usize) -> R,
    ) -> Result<R, simd_json::Error> {
        let Decoder {
            arena,
            buffers,
            tape,
        } = self;
        arena.reset();
        let len = json.len();
        let input = arena.alloc_slice_fill_copy(len + simd_json::INPUT_PADDING, 0u8);
        input[..len].copy_from_slice(json);
        let base = input.as_ptr() as usize;
        let mut t: Tape<'_> = tape.take().unwrap_or_else(Tape::null).reset();
        let result = simd_json::fill_tape_padded(input, len, buffers, &mut t).map(|()| f(&t, base));
        *tape = Some(t.reset());
        result
    }

    /// Decodes a request body: the fields the gateway acts on, and where they are.
    pub fn decode(&mut self, body: &[u8]) -> Result<Decoded, GatewayError> {
        self.decode_keyed(body, None, &|_| Keying::Off)
    }

    /// Decodes the body of a protocol that names the model and streaming in the path (Gemini):
    /// `model` is the alias, a body member of that name is not read.
    pub fn decode_for(
        &mut self,
        body: &[u8],
        model: &str,
        stream: bool,
    ) -> Result<Decoded, GatewayError> {
        self.decode_keyed(body, Some((model, stream)), &|_| Keying::Off)
    }

    /// [`Decoder::decode`] (or, with `path`, [`Decoder::decode_for`]), hashing the body for
    /// the cache key too when `keyed` says the alias caches: on the same tape, not a second
    /// parse.
    pub fn decode_keyed(
        &mut self,
        body: &[u8],
        path: Option<(&str, bool)>,
        keyed: &dyn Fn(&str) -> Keying,
    ) -> Result<Decoded, GatewayError> {
        let result = self.with_tape(body, |t, base| {
            let mut d = extract(t, body, base, path)?;
            let keying = keyed(d.alias(body));
            if keying != Keying::Off
                && let Some(root) = t.as_value().as_object()
            {
                d.digest = Some(crate::cache::key::body(&root));
                if let Keying::Semantic(wire) = keying {
                    d.semantic = crate::cache::semantic::split(&root, wire).map(Box::new);
                }
            }
            Ok(d)
        });
        match result {
            Ok(decoded) => decoded,
            Err(e) => Err(bad(format!("request body is not valid JSON: {e}"))),
        }
    }

    /// [`Decoder::parse`], with the arena copy's address: a borrowed string's offset from it
    /// is its offset in `json`.
    pub fn parse_at<R>(
        &mut self,
        json: &[u8],
        f: impl for<'t, 'i> FnOnce(simd_json::tape::Value<'t, 'i>, usize) -> R,
    ) -> Option<R> {
        self.with_tape(json, |t, base| f(t.as_value(), base)).ok()
    }

    /// Parses any other JSON (an upstream response, a stream event) with the same storage;
    /// `None` if it is not valid JSON.
    pub fn parse<R>(
        &mut self,
        json: &[u8],
        f: impl for<'t, 'i> FnOnce(simd_json::tape::Value<'t, 'i>) -> R,
    ) -> Option<R> {
        self.with_tape(json, |t, _| f(t.as_value())).ok()
    }
}

/// Top-level members the gateway reads or translates, each of which may appear once: its bit
/// in the seen-set. A `match` (length, then bytes), not a scan of a list, per member.
fn acted_on(key: &str) -> Option<u32> {
    Some(match key {
        "model" => 0,
        "stream" => 1,
        "stream_options" => 2,
        "max_tokens" => 3,
        "max_completion_tokens" => 4,
        "user" => 5,
        "metadata" => 6,
        "messages" => 7,
        "system" => 8,
        "tools" => 9,
        "tool_choice" => 10,
        // The Responses API's and Gemini's.
        "input" => 11,
        "instructions" => 12,
        "max_output_tokens" => 13,
        "contents" => 14,
        "systemInstruction" => 15,
        "generationConfig" => 16,
        "toolConfig" => 17,
        "cache" => 18,
        _ => return None,
    })
}

fn extract(
    tape: &Tape<'_>,
    body: &[u8],
    base: usize,
    path: Option<(&str, bool)>,
) -> Result<Decoded, GatewayError> {
    let root = tape.as_value();
    let obj = root
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object"))?;
    let offset = |s: &str| s.as_ptr() as usize - base;
    let mut model = None;
    let mut stream = false;
    let mut stream_options = StreamOptions::Absent;
    let mut rejectable = [const { None }; family::REJECTABLE.len()];
    let mut user = None;
    let mut max_tokens = None;
    let mut cache = None;
    let mut many_choices = false;
    let mut seen = 0u32;
    for (key, value) in obj.iter() {
        // JSON allows a member twice and parsers disagree on which one wins; the router, the
        // splice, the translator and the upstream must read the same value, so none is guessed.
        if let Some(bit) = acted_on(key) {
            if seen & (1 << bit) != 0 {
                return Err(bad(format!(
                    "the member `{key}` appears more than once in the request body"
                )));
            }
            seen |= 1 << bit;
        }
        match key {
            "model" | "stream" if path.is_some() => {}
            "model" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| bad("`model` must be a string"))?;
                let start = offset(s);
                let end = string_end(body, start).ok_or_else(|| bad("malformed `model`"))?;
                let unescaped = (body[start..end].contains(&b'\\')).then(|| s.to_owned());
                model = Some((start..end, unescaped));
            }
            "stream" => {
                stream = match value.as_bool() {
                    Some(b) => b,
                    None if value.is_null() => false,
                    None => return Err(bad("`stream` must be a boolean")),
                };
            }
            "stream_options" => {
                let vstart = value_start(body, offset(key))
                    .ok_or_else(|| bad("malformed `stream_options`"))?;
                stream_options = match value.as_object() {
                    Some(o) => {
                        let mut member = None;
                        for (k, v) in o.iter() {
                            if k == "include_usage" {
                                member = Some((offset(k), v.as_bool()));
                            }
                        }
                        match member {
                            Some((_, Some(true))) => StreamOptions::IncludeUsage,
                            Some((k, _)) => StreamOptions::Object {
                                open: vstart,
                                empty: false,
                                value: value_start(body, k).map(|s| s..scalar_end(body, s)),
                            },
                            None => StreamOptions::Object {
                                open: vstart,
                                empty: o.is_empty(),
                                value: None,
                            },
                        }
                    }
                    None if value.is_array() => {
                        return Err(bad("`stream_options` must be an object"));
                    }
                    None => StreamOptions::Other(vstart..scalar_end(body, vstart)),
                };
            }
            "user" => user = value.as_str().map(|s| offset(s)..offset(s) + s.len()),
            "metadata" => {
                if let Some(v) = value.get("user_id")
                    && let Some(s) = v.as_str()
                {
                    user = Some(offset(s)..offset(s) + s.len());
                }
            }
            "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                max_tokens = value.as_u64();
            }
            "cache" => {
                let k = offset(key);
                let v = value_start(body, k).ok_or_else(|| bad("malformed member"))?;
                cache = Some((Box::new(directives(&value)?), k - 1..value_end(body, v)));
            }
            "n" => many_choices |= value.cast_f64().is_some_and(|n| n > 1.0),
            "generationConfig" => {
                max_tokens = value.get("maxOutputTokens").and_then(|m| m.as_u64());
                // Gemini's `n`.
                many_choices |= value
                    .get("candidateCount")
                    .and_then(|c| c.cast_f64())
                    .is_some_and(|n| n > 1.0);
            }
            _ => {
                if let Some(i) = family::REJECTABLE.iter().position(|f| *f == key) {
                    let k = offset(key);
                    let v = value_start(body, k).ok_or_else(|| bad("malformed member"))?;
                    rejectable[i] = Some(k - 1..value_end(body, v));
                }
            }
        }
    }
    if let Some((alias, streams)) = path {
        model = Some((0..0, Some(alias.to_owned())));
        stream = streams;
    }
    let (model, model_unescaped) =
        model.ok_or_else(|| bad("you must provide a `model` parameter"))?;
    if model_unescaped
        .as_deref()
        .map_or(model.is_empty(), str::is_empty)
    {
        return Err(bad("`model` must not be empty"));
    }
    let open = body.iter().position(|&b| b == b'{').unwrap_or(0);
    Ok(Decoded {
        model,
        model_unescaped,
        stream,
        stream_options,
        open,
        user: user.filter(|r: &Range<usize>| !body[r.clone()].contains(&b'\\')),
        max_tokens,
        rejectable,
        digest: None,
        semantic: None,
        cache,
        many_choices,
    })
}

/// The body's `cache` member (LiteLLM's shape): `no-cache`, `no-store`, `ttl` and
/// `s-maxage` in seconds, `namespace`.
fn directives(
    v: &simd_json::tape::Value<'_, '_>,
) -> Result<crate::cache::Directives, GatewayError> {
    let o = v
        .as_object()
        .ok_or_else(|| bad("`cache` must be an object"))?;
    let mut d = crate::cache::Directives::default();
    for (k, v) in o.iter() {
        let flag = || {
            v.as_bool()
                .ok_or_else(|| bad(format!("`cache.{k}` must be true or false")))
        };
        let seconds = || {
            v.cast_f64()
                .filter(|s| *s >= 0.0)
                .map(|s| s.ceil() as u64)
                .ok_or_else(|| bad(format!("`cache.{k}` must be a number of seconds")))
        };
        match k {
            "no-cache" | "no_cache" => d.no_cache = flag()?,
            "no-store" | "no_store" => d.no_store = flag()?,
            "ttl" => d.ttl_s = Some(seconds()?),
            "s-maxage" | "max-age" | "max_age" => d.max_age_s = Some(seconds()?),
            "namespace" => {
                let s = v
                    .as_str()
                    .ok_or_else(|| bad("`cache.namespace` must be a string"))?;
                d.namespace = Some(s.into());
            }
            "threshold" | "similarity_threshold" => {
                let t = v
                    .cast_f64()
                    .filter(|t| *t > 0.0 && *t <= 1.0)
                    .ok_or_else(|| bad(format!("`cache.{k}` must be a number in (0, 1]")))?;
                d.threshold_ppm = Some((t * 1e6).round() as u32);
            }
            other => {
                return Err(bad(format!(
                    "unknown `cache.{other}` (one of: no-cache, no-store, ttl, s-maxage, namespace, threshold)"
                )));
            }
        }
    }
    Ok(d)
}

/// End of any JSON value starting at `start` in a body the tape already validated.
fn value_end(body: &[u8], start: usize) -> usize {
    match body.get(start) {
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < body.len() {
                match body[i] {
                    b'"' => i = string_end(body, i + 1).unwrap_or(body.len()),
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            body.len()
        }
        _ => scalar_end(body, start),
    }
}

/// Index of the closing quote of a string whose content starts at `start`.
pub(super) fn string_end(body: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    while i < body.len() {
        match body[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Start of the value of the member whose key content starts at `key_start`.
fn value_start(body: &[u8], key_start: usize) -> Option<usize> {
    let mut i = string_end(body, key_start)? + 1;
    while body.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    if body[i] != b':' {
        return None;
    }
    i += 1;
    while body.get(i)?.is_ascii_whitespace() {
        i += 1;
    }
    Some(i)
}

/// End of a scalar (number, `true`, `false`, `null`, or a string) starting at `start`.
fn scalar_end(body: &[u8], start: usize) -> usize {
    if body.get(start) == Some(&b'"') {
        return string_end(body, start + 1).map_or(body.len(), |e| e + 1);
    }
    let mut i = start;
    while i < body.len() && !matches!(body[i], b',' | b'}' | b']') && !body[i].is_ascii_whitespace()
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<Decoded, GatewayError> {
        Decoder::default().decode(s.as_bytes())
    }

    #[test]
    fn a_member_the_gateway_acts_on_may_appear_once() {
        for (body, member) in [
            (r#"{"model":"a","messages":[],"model":"b"}"#, "model"),
            (r#"{"model":"a","stream":false,"stream":true}"#, "stream"),
            (
                r#"{"model":"a","max_tokens":1,"max_tokens":9}"#,
                "max_tokens",
            ),
            (r#"{"model":"a","user":"x","user":"y"}"#, "user"),
            (r#"{"model":"a","metadata":{},"metadata":{}}"#, "metadata"),
            (
                r#"{"model":"a","stream_options":{},"stream_options":null}"#,
                "stream_options",
            ),
            // An escaped key is the same member.
            (
                r#"{"model":"a","str\u0065am":true,"stream":false}"#,
                "stream",
            ),
        ] {
            let e = decode(body).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest);
            assert!(
                e.message.contains(&format!("`{member}`")),
                "{body}: {}",
                e.message
            );
        }
        // Members inside messages, and members the gateway does not read, are not its concern.
        decode(r#"{"model":"a","messages":[{"role":"user"},{"role":"user"}],"x":1,"x":2}"#)
            .unwrap();
    }

    #[test]
    fn finds_model_and_stream() {
        let body = r#"{"messages":[{"role":"user","content":"hi \"model\""}], "model" : "gpt-4o", "stream":true}"#;
        let d = decode(body).unwrap();
        assert_eq!(&body[d.model.clone()], "gpt-4o");
        assert_eq!(d.alias(body.as_bytes()), "gpt-4o");
        assert!(d.stream);
        assert_eq!(d.stream_options, StreamOptions::Absent);
        assert_eq!(d.open, 0);
    }

    #[test]
    fn escaped_model_and_key_offsets_hold() {
        let body = r#"{"messages":"a\nb\u00e9\"","mo\u0064el":"gpt\u002d4","stream":false}"#;
        let d = decode(body).unwrap();
        assert_eq!(&body[d.model.clone()], r"gpt\u002d4");
        assert_eq!(d.alias(body.as_bytes()), "gpt-4");
        assert!(!d.stream);
    }

    #[test]
    fn stream_options_variants() {
        let d = decode(r#"{"model":"m","stream_options":{"include_usage":true}}"#).unwrap();
        assert_eq!(d.stream_options, StreamOptions::IncludeUsage);
        let b = r#"{"model":"m","stream_options": {"include_usage" : false}}"#;
        let d = decode(b).unwrap();
        let StreamOptions::Object {
            open,
            empty,
            value: Some(v),
        } = d.stream_options
        else {
            panic!()
        };
        assert_eq!(&b[open..open + 1], "{");
        assert!(!empty);
        assert_eq!(&b[v], "false");
        let b = r#"{"model":"m","stream_options":{}}"#;
        let d = decode(b).unwrap();
        assert!(matches!(
            d.stream_options,
            StreamOptions::Object {
                empty: true,
                value: None,
                ..
            }
        ));
        let b = r#"{"model":"m","stream_options":null}"#;
        let StreamOptions::Other(r) = decode(b).unwrap().stream_options else {
            panic!()
        };
        assert_eq!(&b[r], "null");
    }

    #[test]
    fn rejects_what_it_cannot_route() {
        for (body, needle) in [
            ("{", "not valid JSON"),
            ("[1]", "JSON object"),
            (r#"{"messages":[]}"#, "`model`"),
            (r#"{"model":3}"#, "`model` must be a string"),
            (r#"{"model":""}"#, "must not be empty"),
            (r#"{"model":"m","stream":"yes"}"#, "`stream`"),
            ("{\"model\":\"\u{1}\"}", "not valid JSON"),
        ] {
            let e = decode(body).unwrap_err();
            assert_eq!(e.kind, Kind::BadRequest, "{body}");
            assert!(e.message.contains(needle), "{body}: {}", e.message);
        }
    }

    #[test]
    fn finds_rejectable_members() {
        let b = r#"{"model":"m","logit_bias": {"1":[2,"}"]} ,"logprobs":true}"#;
        let d = decode(b).unwrap();
        let at = |f: &str| family::REJECTABLE.iter().position(|x| *x == f).unwrap();
        assert_eq!(
            &b[d.rejectable[at("logit_bias")].clone().unwrap()],
            r#""logit_bias": {"1":[2,"}"]}"#
        );
        assert_eq!(
            &b[d.rejectable[at("logprobs")].clone().unwrap()],
            r#""logprobs":true"#
        );
        assert!(d.rejectable[at("top_logprobs")].is_none());
    }

    #[test]
    fn more_than_one_choice_is_noted_in_either_protocol() {
        for (body, many) in [
            (r#"{"model":"m","n":2}"#, true),
            (r#"{"model":"m","n":1}"#, false),
            (r#"{"model":"m"}"#, false),
            (
                r#"{"model":"m","generationConfig":{"candidateCount":3}}"#,
                true,
            ),
            (
                r#"{"model":"m","generationConfig":{"candidateCount":1}}"#,
                false,
            ),
        ] {
            assert_eq!(decode(body).unwrap().many_choices, many, "{body}");
        }
    }

    #[test]
    fn decoder_is_reusable_across_bodies() {
        let mut d = Decoder::default();
        let big = format!(r#"{{"model":"a","x":"{}"}}"#, "y".repeat(70_000));
        assert_eq!(d.decode(big.as_bytes()).unwrap().alias(big.as_bytes()), "a");
        let small = r#"{"model":"bb"}"#;
        assert_eq!(
            d.decode(small.as_bytes()).unwrap().alias(small.as_bytes()),
            "bb"
        );
    }
}
