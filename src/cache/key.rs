//! The cache key: a versioned 128-bit hash of a request in canonical form. The body is hashed
//! from the decode stage's tape (no second parse), so that two requests that ask the same
//! thing hash the same however they are written:
//!
//! - object members in any order (an object's hash is the sum of its members' hashes);
//! - `1` and `1.0` alike (numbers as `f64`);
//! - sampling settings at their defaults the same as absent (`temperature: 1`, `top_p: 1`,
//!   `n: 1`, penalties `0`), as is any member set to `null` and an empty `tools` or `stop`;
//! - `max_completion_tokens` the same as `max_tokens`.
//!
//! Members that do not change the answer are left out: `model` (the alias is hashed apart),
//! `stream` and `stream_options` (one stored answer serves both forms), who asked (`user`,
//! `metadata`, `safety_identifier`), storage and billing hints, and the gateway's own `cache`.
//! Everything else — messages, system, tools and tool choice, response format, sampling,
//! stop, seed, reasoning, vendor extensions — is in the hash.
//!
//! Each member's canonical form is tagged, length-prefixed 64-bit words (a long string as its
//! own XXH3-128 digest, so message text is read once), hashed with XXH3-128; a collision
//! would also need the same alias and tenant, which the store compares in full.

use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

/// Bumped whenever what is hashed, or how, changes: old entries then simply miss.
const VERSION: u64 = 2;

/// Top-level members that never change the answer.
fn ignored(key: &str) -> bool {
    matches!(
        key,
        "model"
            | "stream"
            | "stream_options"
            | "user"
            | "metadata"
            | "store"
            | "service_tier"
            | "safety_identifier"
            | "prompt_cache_key"
            | "prompt_cache_retention"
            | "cache"
    )
}

/// Whether a top-level member holds its default (and so hashes as if absent).
fn at_default(key: &str, v: &Value<'_, '_>) -> bool {
    if v.is_null() {
        return true;
    }
    let n = v.cast_f64();
    match key {
        "temperature" | "top_p" | "n" => n == Some(1.0),
        "presence_penalty" | "frequency_penalty" => n == Some(0.0),
        "parallel_tool_calls" => v.as_bool() == Some(true),
        "tools" | "stop" => v.as_array().is_some_and(|a| a.is_empty()),
        _ => false,
    }
}

/// Strings at least this long go in as their XXH3-128 digest (one pass over message text).
const LONG: usize = 64;

/// The canonical form is buffered as words and hashed at the end with one XXH3-128 call;
/// a longer form is chained (the buffer's digest starts it again).
const BUF: usize = 24 * 8;

/// One member's (or the whole key's) canonical form: tagged, length-prefixed 64-bit words.
struct Pair {
    buf: [u8; BUF],
    len: usize,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            buf: [0; BUF],
            len: 0,
        }
    }

    fn u64(&mut self, v: u64) {
        if self.len == BUF {
            let d = xxhash_rust::xxh3::xxh3_128(&self.buf);
            self.buf[..16].copy_from_slice(&d.to_le_bytes());
            self.len = 16;
        }
        self.buf[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }

    fn u128(&mut self, v: u128) {
        self.u64(v as u64);
        self.u64((v >> 64) as u64);
    }

    /// A string: its length, then its bytes as little-endian words (the last one padded with
    /// zeros, which the length tells apart), or a long one's digest.
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        if b.len() >= LONG {
            self.u128(xxhash_rust::xxh3::xxh3_128(b));
            return;
        }
        let mut words = b.chunks_exact(8);
        for w in &mut words {
            self.u64(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.u64(u64::from_le_bytes(last));
        }
    }

    fn finish(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&self.buf[..self.len])
    }
}

// Type tags, so `"1"`, `1` and `[1]` differ.
const NULL: u64 = 1;
const FALSE: u64 = 2;
const TRUE: u64 = 3;
const NUMBER: u64 = 4;
const STRING: u64 = 5;
const ARRAY: u64 = 6;
const OBJECT: u64 = 7;
/// A masked string: one whose text is left out (see [`body_masked`]).
const MASKED: u64 = 8;

/// Strings of the body, by where they are in the tape's input, whose text is not hashed.
type Mask<'m> = &'m [&'m str];

fn masked(mask: Mask<'_>, s: &str) -> bool {
    // Each string of a tape lies in its own span of the input, so its address names it.
    mask.iter()
        .any(|m| std::ptr::eq(m.as_ptr(), s.as_ptr()) && m.len() == s.len())
}

fn value(v: &Value<'_, '_>, h: &mut Pair, mask: Mask<'_>) {
    if let Some(s) = v.as_str() {
        if !mask.is_empty() && masked(mask, s) {
            h.u64(MASKED);
            return;
        }
        h.u64(STRING);
        h.bytes(s.as_bytes());
    } else if let Some(a) = v.as_array() {
        h.u64(ARRAY);
        h.u64(a.len() as u64);
        for e in a.iter() {
            value(&e, h, mask);
        }
    } else if let Some(o) = v.as_object() {
        let (count, sum) = members(&o, false, mask);
        h.u64(OBJECT);
        h.u64(count);
        h.u128(sum);
    } else if let Some(b) = v.as_bool() {
        h.u64(if b { TRUE } else { FALSE });
    } else if let Some(n) = v.cast_f64() {
        h.u64(NUMBER);
        // Integers past 2^53 keep every digit.
        match v.as_i64().or_else(|| v.as_u64().map(|u| u as i64)) {
            Some(i) if (i as f64) as i64 != i => h.u64(i as u64 ^ 0x8000_0000_0000_0000),
            _ => h.u64(n.to_bits()),
        }
    } else {
        h.u64(NULL);
    }
}

/// An object's members, each hashed apart and summed (the order they came in does not
/// count), and how many were hashed. A nested object's count and sum go into its parent's
/// hash as they are; only the body's are hashed once more ([`object`]).
fn members(o: &Object<'_, '_>, top: bool, mask: Mask<'_>) -> (u64, u128) {
    let mut sum = 0u128;
    let mut count = 0u64;
    for (k, v) in o.iter() {
        let k = if top {
            if ignored(k) || at_default(k, &v) {
                continue;
            }
            if k == "max_completion_tokens" {
                "max_tokens"
            } else {
                k
            }
        } else {
            k
        };
        let mut h = Pair::new();
        h.bytes(k.as_bytes());
        value(&v, &mut h, mask);
        sum = sum.wrapping_add(h.finish());
        count += 1;
    }
    (count, sum)
}

/// The body object's hash.
fn object(root: &Object<'_, '_>, mask: Mask<'_>) -> u128 {
    let (count, sum) = members(root, true, mask);
    let mut h = Pair::new();
    h.u64(OBJECT);
    h.u64(count);
    h.u128(sum);
    h.finish()
}

fn halves(h: u128) -> [u64; 2] {
    [(h >> 64) as u64, h as u64]
}

/// The body's part of the key.
pub fn body(root: &Object<'_, '_>) -> [u64; 2] {
    halves(object(root, &[]))
}

/// The body's hash with the strings in `mask` (string values of this same tape, compared by
/// address, not text) each hashed as one fixed marker instead of their text: two bodies that
/// differ only in those strings hash the same, and never as a body with any text there.
/// The semantic cache's context ([`super::semantic::split`]) is the body without its last
/// user turn.
pub fn body_masked(root: &Object<'_, '_>, mask: &[&str]) -> [u64; 2] {
    halves(object(root, mask))
}

/// The alias and its target group (each target as `provider/model`, in config order): the
/// part of a key that is the same for every request of an alias, hashed once per generation.
pub fn group<'a>(alias: &str, targets: impl Iterator<Item = (&'a str, &'a str)>) -> u128 {
    let mut h = Pair::new();
    h.u64(VERSION);
    h.bytes(alias.as_bytes());
    for (provider, model) in targets {
        h.bytes(provider.as_bytes());
        h.bytes(model.as_bytes());
    }
    h.finish()
}

/// What a cache key is made of besides the body.
pub struct Parts<'a> {
    /// The client's protocol, as a number (bodies of two protocols never share a key).
    pub wire: u8,
    /// The alias and its targets ([`group`]): another target group is another key.
    pub group: u128,
    /// Whose answers may be shared: the key, the team, or everyone.
    pub tenant: super::Tenant<'a>,
    /// A client's `cache.namespace`.
    pub namespace: &'a str,
    pub body: [u64; 2],
}

/// The whole key.
pub fn key(p: Parts<'_>) -> u128 {
    let mut h = Pair::new();
    h.u128(p.group);
    h.u64(p.wire as u64);
    h.bytes(p.tenant.kind.as_bytes());
    h.bytes(p.tenant.name.as_bytes());
    h.bytes(p.namespace.as_bytes());
    h.u64(p.body[0]);
    h.u64(p.body[1]);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(json: &str) -> [u64; 2] {
        let mut d = crate::pipeline::decode::Decoder::default();
        d.parse(json.as_bytes(), |v| body(&v.as_object().unwrap()))
            .unwrap()
    }

    #[test]
    fn writing_the_same_request_another_way_hashes_the_same() {
        let a =
            digest(r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#);
        for same in [
            // Members in another order, at every depth; spacing.
            r#"{ "max_tokens" : 5, "messages":[{"content":"hi","role":"user"}], "model":"a"}"#,
            // Another alias (hashed apart), streamed, another user, defaults spelled out.
            r#"{"model":"b","stream":true,"stream_options":{"include_usage":true},"user":"u","messages":[{"role":"user","content":"hi"}],"max_tokens":5.0,"temperature":1,"top_p":1.0,"n":1,"presence_penalty":0,"tools":[],"seed":null,"cache":{"ttl":5}}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5}"#,
        ] {
            assert_eq!(digest(same), a, "{same}");
        }
    }

    #[test]
    fn anything_that_changes_the_answer_changes_the_hash() {
        let base = r#"{"model":"a","messages":[{"role":"user","content":"hi"}]}"#;
        let a = digest(base);
        for other in [
            r#"{"model":"a","messages":[{"role":"user","content":"hi!"}]}"#,
            r#"{"model":"a","messages":[{"role":"system","content":"hi"}]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"},{"role":"user","content":"hi"}]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":["hi"]}]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"temperature":0.2}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"seed":1}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"stop":["x"]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"n":2}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low"}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"tool_choice":"required"}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"g"}}]}"#,
            r#"{"model":"a","messages":[{"role":"user","content":"hi"}],"parallel_tool_calls":false}"#,
            // A nested default is not a default: only top-level sampling settings are.
            r#"{"model":"a","messages":[{"role":"user","content":"hi","temperature":1}]}"#,
        ] {
            assert_ne!(digest(other), a, "{other}");
        }
        // Nor do swapped values of two members hash alike.
        assert_ne!(
            digest(r#"{"model":"a","x":"1","y":"2"}"#),
            digest(r#"{"model":"a","x":"2","y":"1"}"#)
        );
        assert_ne!(
            digest(r#"{"model":"a","x":1}"#),
            digest(r#"{"model":"a","x":"1"}"#)
        );
    }

    #[test]
    fn the_key_covers_tenant_alias_targets_and_namespace() {
        let body = digest(r#"{"model":"a","messages":[]}"#);
        let k = |tenant: &str, alias: &str, model: &str, ns: &str, wire: u8| {
            let tenant = crate::cache::Tenant {
                kind: "k:",
                name: tenant,
            };
            key(Parts {
                wire,
                group: group(alias, [("openai", model)].into_iter()),
                tenant,
                namespace: ns,
                body,
            })
        };
        let a = k("k:1", "gpt", "m", "", 0);
        assert_eq!(a, k("k:1", "gpt", "m", "", 0));
        for other in [
            k("k:2", "gpt", "m", "", 0),
            k("k:1", "gpt2", "m", "", 0),
            k("k:1", "gpt", "m2", "", 0),
            k("k:1", "gpt", "m", "x", 0),
            k("k:1", "gpt", "m", "", 1),
        ] {
            assert_ne!(other, a);
        }
    }
}
