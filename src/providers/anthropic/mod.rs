//! The Anthropic Messages wire protocol: `ingress` is the side clients speak to
//! `POST /v1/messages`, `upstream` the side sent to an Anthropic provider. Both translate
//! through [`super::canonical`]; Anthropic-to-Anthropic traffic never comes here.

mod adapter;
pub mod ingress;
mod ratelimit;
pub mod upstream;

pub use adapter::Anthropic;

/// The `anthropic-version` header the gateway sends when the provider config names none.
pub const API_VERSION: &str = "2023-06-01";

use simd_json::prelude::*;

use super::adapter::Splice;
use super::{Usage, head};
use crate::json;
use crate::pipeline::decode::Decoder;

/// Writes a same-protocol upstream request: the client's bytes with only `model` replaced.
pub fn build(out: &mut Vec<u8>, s: &Splice<'_>) {
    let Splice {
        provider,
        api_key,
        origin,
        endpoint,
        body,
        decoded,
        model,
    } = *s;
    let mut escaped = Vec::with_capacity(model.len() + 8);
    json::push_escaped(&mut escaped, model.as_bytes());
    let mut edits = [(decoded.model.start, decoded.model.end, escaped.as_slice()); 2];
    let mut n = 1;
    let mut last_removed = None;
    if let Some((edit, last)) = super::openai::cache_member_edit(body, decoded) {
        edits[1] = edit;
        n = 2;
        last_removed = last.then_some(edit.0);
    }
    let edits = &mut edits[..n];
    let len = super::openai::arrange(body, edits, last_removed);
    head::write(
        out,
        provider,
        api_key,
        origin,
        endpoint.path(),
        model,
        len,
        decoded.stream,
    );
    super::openai::write_edited(out, body, edits);
}

/// Folds one `usage` object into `into`, keeping every count it does not carry (a
/// `message_delta` may repeat the input side or carry only `output_tokens`). Anthropic's
/// `input_tokens` excludes the tokens read from and written to the cache; [`Usage::input`]
/// includes them, so they are added back. No reasoning count is reported: thinking tokens are
/// part of `output_tokens`, and `reasoning` stays 0.
fn usage_of(u: simd_json::tape::Value<'_, '_>, into: &mut Usage) {
    let n = |k: &str| u.get(k).and_then(|x| x.as_u64());
    let fresh = into
        .input
        .saturating_sub(into.cache_read)
        .saturating_sub(into.cache_write);
    let fresh = n("input_tokens").unwrap_or(fresh);
    into.cache_read = n("cache_read_input_tokens").unwrap_or(into.cache_read);
    into.cache_write = n("cache_creation_input_tokens").unwrap_or(into.cache_write);
    into.input = fresh
        .saturating_add(into.cache_read)
        .saturating_add(into.cache_write);
    if let Some(output) = n("output_tokens") {
        into.output = output;
    }
}

/// Usage from a whole Messages response body.
pub fn usage_from_body(json: &mut Decoder, body: &[u8]) -> Option<Usage> {
    memchr::memmem::find(body, b"\"usage\"")?;
    json.parse(body, |v| {
        let mut usage = Usage::default();
        usage_of(v.get("usage")?, &mut usage);
        Some(usage)
    })
    .flatten()
}

/// Folds one stream event's usage into `usage`: `message_start` carries the input side,
/// `message_delta` the cumulative output.
pub fn usage_from_event(json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) {
    if memchr::memmem::find(data, b"\"usage\"").is_none() {
        return;
    }
    let mut u = usage.unwrap_or_default();
    let found = json.parse(data, |v| {
        let is = |want: &str| v.get("type").is_some_and(|t| t.as_str() == Some(want));
        let holder = if is("message_start") {
            v.get("message")?
        } else if is("message_delta") {
            v
        } else {
            return None;
        };
        usage_of(holder.get("usage")?, &mut u);
        Some(())
    });
    if found.flatten().is_some() {
        *usage = Some(u);
    }
}

/// A local estimate of a Messages request's input tokens (for `count_tokens` when the upstream
/// is not Anthropic): about four characters a token over every string in `system`, `messages`
/// and `tools`, plus a few tokens of framing per message.
pub fn estimate_input_tokens(body: &[u8]) -> Option<u64> {
    let mut copy = body.to_vec();
    let v = simd_json::to_borrowed_value(&mut copy).ok()?;
    fn chars(v: &simd_json::BorrowedValue<'_>) -> usize {
        if let Some(s) = v.as_str() {
            s.chars().count()
        } else if let Some(a) = v.as_array() {
            a.iter().map(chars).sum()
        } else if let Some(o) = v.as_object() {
            o.values().map(chars).sum()
        } else {
            0
        }
    }
    let messages = v.get("messages")?.as_array()?;
    let text: usize = ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| v.get(*k))
        .map(chars)
        .sum();
    Some((text as u64).div_ceil(4) + 3 * messages.len() as u64 + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cached_input() {
        let mut d = Decoder::default();
        let body = br#"{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":2,"output_tokens":7}}"#;
        assert_eq!(
            usage_from_body(&mut d, body),
            Some(Usage {
                input: 17,
                output: 7,
                cache_read: 5,
                cache_write: 2,
                reasoning: 0,
            })
        );
        let mut u = None;
        usage_from_event(
            &mut d,
            br#"{"type":"message_start","message":{"usage":{"input_tokens":9,"output_tokens":1}}}"#,
            &mut u,
        );
        usage_from_event(&mut d, br#"{"type":"ping"}"#, &mut u);
        usage_from_event(
            &mut d,
            br#"{"type":"message_delta","delta":{},"usage":{"output_tokens":30}}"#,
            &mut u,
        );
        assert_eq!(u.map(|u| (u.input, u.output)), Some((9, 30)));
    }

    #[test]
    fn stream_usage_counts_cache_reads_and_writes_in_input() {
        let mut d = Decoder::default();
        let mut u = None;
        usage_from_event(
            &mut d,
            br#"{"type":"message_start","message":{"id":"m","usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"cache_read_input_tokens":20000,"output_tokens":1}}}"#,
            &mut u,
        );
        let want = Usage {
            input: 21_003,
            output: 1,
            cache_read: 20_000,
            cache_write: 1000,
            reasoning: 0,
        };
        assert_eq!(u, Some(want));
        // A delta that repeats only part of the input side keeps the rest.
        usage_from_event(
            &mut d,
            br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":3,"output_tokens":450}}"#,
            &mut u,
        );
        assert_eq!(
            u,
            Some(Usage {
                output: 450,
                ..want
            })
        );
        // A delta that repeats all of it (as the API now does) changes nothing else.
        usage_from_event(
            &mut d,
            br#"{"type":"message_delta","delta":{},"usage":{"input_tokens":3,"cache_creation_input_tokens":1000,"cache_read_input_tokens":20000,"output_tokens":451}}"#,
            &mut u,
        );
        assert_eq!(
            u,
            Some(Usage {
                output: 451,
                ..want
            })
        );
    }

    #[test]
    fn estimates_grow_with_text() {
        let short = estimate_input_tokens(br#"{"messages":[{"role":"user","content":"hi"}]}"#);
        let long = estimate_input_tokens(
            br#"{"system":"be brief","messages":[{"role":"user","content":"hello there, how are you today?"}]}"#,
        );
        assert!(short.unwrap() < long.unwrap());
        assert_eq!(estimate_input_tokens(b"{}"), None);
    }
}
