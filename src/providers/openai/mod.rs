//! The OpenAI wire protocol (and every OpenAI-compatible server). Same-protocol traffic is
//! handled here: request building by splicing the client's bytes, and usage extraction from
//! responses and stream events. `ingress` and `upstream` translate through the canonical form
//! when the other side speaks another protocol.

mod adapter;
pub mod embed;
pub mod ingress;
mod ratelimit;
pub mod upstream;

pub use adapter::OpenAi;

use simd_json::prelude::*;

use super::adapter::Splice;
use super::{Usage, family, head};
use crate::json;
use crate::pipeline::decode::{Decoder, StreamOptions};

const INCLUDE_USAGE_MEMBER: &[u8] = b"\"stream_options\":{\"include_usage\":true},";

/// Writes the whole upstream request (head and body) into `out`. The body is the client's,
/// with `model` replaced, the fields the vendor rejects removed, and, for streams,
/// `stream_options.include_usage` forced on so usage can be accounted. Returns whether the
/// gateway added `include_usage` (the client did not ask).
pub fn build(out: &mut Vec<u8>, r: &Splice<'_>) -> bool {
    // A model name is plain almost always: it goes in as it is, with no buffer to escape into.
    let escaped;
    let model: &[u8] = if json::needs_escape(r.model.as_bytes()) {
        let mut m = Vec::with_capacity(r.model.len() + 8);
        json::push_escaped(&mut m, r.model.as_bytes());
        escaped = m;
        &escaped
    } else {
        r.model.as_bytes()
    };
    const NONE: (usize, usize, &[u8]) = (0, 0, b"");
    let mut edits: [(usize, usize, &[u8]); 3 + family::REJECTABLE.len()] =
        [NONE; 3 + family::REJECTABLE.len()];
    edits[0] = (r.decoded.model.start, r.decoded.model.end, model);
    let mut n = 1;
    let mut injected = false;
    if r.decoded.stream && r.endpoint.streams() {
        injected = true;
        let edit: (usize, usize, &[u8]) = match &r.decoded.stream_options {
            StreamOptions::IncludeUsage => {
                injected = false;
                NONE
            }
            StreamOptions::Absent => (r.decoded.open + 1, r.decoded.open + 1, INCLUDE_USAGE_MEMBER),
            StreamOptions::Object {
                open, empty: true, ..
            } => (open + 1, open + 1, b"\"include_usage\":true"),
            StreamOptions::Object { value: Some(v), .. } => (v.start, v.end, b"true"),
            StreamOptions::Object {
                open, value: None, ..
            } => (open + 1, open + 1, b"\"include_usage\":true,"),
            StreamOptions::Other(v) => (v.start, v.end, b"{\"include_usage\":true}"),
        };
        if injected || edit != NONE {
            edits[n] = edit;
            n += 1;
        }
    }
    let mut last_removed = None;
    // Most vendors reject nothing: this loop is skipped on the common path.
    if !r.provider.vendor.rejects.is_empty() {
        for (i, span) in r.decoded.rejectable.iter().enumerate() {
            let field = family::REJECTABLE[i];
            if let Some(span) = span
                && r.provider.vendor.rejects.contains(&field)
            {
                log::debug!(
                    "provider {:?} ({}) rejects `{field}`: dropped from the request",
                    r.provider.name,
                    r.provider.vendor.name
                );
                let (s, e, followed) = member_with_comma(r.body, span.clone());
                edits[n] = (s, e, b"");
                n += 1;
                if !followed {
                    last_removed = Some(s);
                }
            }
        }
    }
    if let Some((edit, last)) = cache_member_edit(r.body, r.decoded) {
        edits[n] = edit;
        n += 1;
        if last {
            last_removed = Some(edit.0);
        }
    }
    let edits = &mut edits[..n];
    let new_len = arrange(r.body, edits, last_removed);
    head::write(
        out,
        r.provider,
        r.api_key,
        r.origin,
        r.endpoint.path(),
        r.model,
        new_len,
        r.decoded.stream,
    );
    write_edited(out, r.body, edits);
    injected
}

/// An edit of a body: bytes `start..end` replaced by the slice (empty: removed).
pub(crate) type Edit<'a> = (usize, usize, &'a [u8]);

/// Orders `edits` and fixes the comma a removed last member leaves; returns the edited length.
pub(crate) fn arrange(body: &[u8], edits: &mut [Edit<'_>], last_removed: Option<usize>) -> usize {
    if edits.len() > 1 {
        // By (start, end): an insertion at a point goes before a removal starting there.
        edits.sort_unstable_by_key(|e| (e.0, e.1));
    }
    if let Some(start) = last_removed {
        take_comma_before_run(body, edits, start);
    }
    edits
        .iter()
        .fold(body.len(), |n, (s, e, with)| n + with.len() - (e - s))
}

/// Writes `body` with its (arranged) edits.
pub(crate) fn write_edited(out: &mut Vec<u8>, body: &[u8], edits: &[Edit<'_>]) {
    let mut at = 0;
    for &(s, e, with) in edits {
        out.extend_from_slice(&body[at..s]);
        out.extend_from_slice(with);
        at = e;
    }
    out.extend_from_slice(&body[at..]);
}

/// The edit removing the gateway's own `cache` member, if the body has one, and whether it
/// was the object's last member.
pub(crate) fn cache_member_edit(
    body: &[u8],
    d: &crate::pipeline::decode::Decoded,
) -> Option<(Edit<'static>, bool)> {
    let (_, span) = d.cache.as_ref()?;
    let (s, e, followed) = member_with_comma(body, span.clone());
    Some(((s, e, b""), !followed))
}

/// A tool call in OpenAI's shape (`index` first when it is a stream delta's), as requests,
/// responses and stream chunks all write it.
fn write_tool_call(index: Option<usize>, id: &str, name: &str, arguments: &str, out: &mut Vec<u8>) {
    out.push(b'{');
    if let Some(i) = index {
        out.extend_from_slice(b"\"index\":");
        json::push_u64(out, i as u64);
        out.push(b',');
    }
    out.extend_from_slice(b"\"id\":");
    json::push_str(out, id);
    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
    json::push_str(out, name);
    out.extend_from_slice(b",\"arguments\":");
    json::push_str(out, arguments);
    out.extend_from_slice(b"}}");
}

/// Widens a removed member's span to take the comma that follows it; says whether there was one
/// (there is none after the object's last member).
fn member_with_comma(body: &[u8], span: std::ops::Range<usize>) -> (usize, usize, bool) {
    let mut e = span.end;
    while body.get(e).is_some_and(u8::is_ascii_whitespace) {
        e += 1;
    }
    match body.get(e) {
        Some(b',') => (span.start, e + 1, true),
        _ => (span.start, span.end, false),
    }
}

/// The object's last member is removed: the comma before the run of removed members that ends
/// with it (`, "a":1, "last":2}`) must go too, or a trailing comma would remain.
fn take_comma_before_run(body: &[u8], edits: &mut [(usize, usize, &[u8])], last_start: usize) {
    let blank = |a: usize, b: usize| body[a..b].iter().all(u8::is_ascii_whitespace);
    let Some(mut i) = edits
        .iter()
        .position(|e| e.0 == last_start && e.2.is_empty())
    else {
        return;
    };
    // Walk back over removals that touch each other.
    while i > 0 {
        let prev = edits[i - 1];
        if prev.2.is_empty()
            && prev.0 != prev.1
            && prev.1 <= edits[i].0
            && blank(prev.1, edits[i].0)
        {
            i -= 1;
        } else {
            break;
        }
    }
    let mut k = edits[i].0;
    while k > 0 && body[k - 1].is_ascii_whitespace() {
        k -= 1;
    }
    if k > 0 && body[k - 1] == b',' {
        edits[i].0 = k - 1;
    }
}

/// `usage` as OpenAI reports it: `prompt_tokens` already counts the cached share
/// (`prompt_tokens_details.cached_tokens`), and `completion_tokens` the reasoning share
/// (`completion_tokens_details.reasoning_tokens`).
fn usage_of(v: simd_json::tape::Value<'_, '_>) -> Option<Usage> {
    let u = v.get("usage")?;
    let u = u.as_object()?;
    let n = |k: &str| u.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let detail = |holder: &str, k: &str| {
        u.get(holder)
            .and_then(|d| d.get(k))
            .and_then(|x| x.as_u64())
            .unwrap_or(0)
    };
    Some(Usage {
        input: n("prompt_tokens"),
        output: n("completion_tokens"),
        cache_read: detail("prompt_tokens_details", "cached_tokens"),
        cache_write: 0,
        reasoning: detail("completion_tokens_details", "reasoning_tokens"),
    })
}

/// Usage from a whole JSON response body (parsed with the connection's reused `json` storage).
pub fn usage_from_body(json: &mut Decoder, body: &[u8]) -> Option<Usage> {
    memchr::memmem::find(body, b"\"usage\"")?;
    json.parse(body, usage_of).flatten()
}

/// Usage carried by one stream event's data, and whether the event carries nothing else
/// (`choices` empty: the chunk `include_usage` adds at the end).
pub fn usage_from_event(json: &mut Decoder, data: &[u8]) -> Option<(Usage, bool)> {
    let at = memchr::memmem::find(data, b"\"usage\"")?;
    // Cheap reject of `"usage":null`, which every chunk carries when usage is on.
    let rest = &data[at + 7..];
    let v = rest
        .iter()
        .find(|b| !b.is_ascii_whitespace() && **b != b':')?;
    if *v != b'{' {
        return None;
    }
    json.parse(data, |value| {
        let usage = usage_of(value)?;
        let only = value
            .get("choices")
            .and_then(|c| c.as_array())
            .is_some_and(|c| c.is_empty());
        Some((usage, only))
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Origin, Provider, Secret, Timeouts};
    use crate::pipeline::decode::Decoder;
    use crate::providers::Endpoint;
    use crate::providers::Protocol;

    fn provider() -> (Provider, Origin) {
        let p = Provider {
            name: "p".into(),
            protocol: Protocol::OpenAi,
            vendor: crate::providers::family::find("openai").unwrap(),
            origin: Some(0),
            base_path: "/v1".into(),
            api_key: Some(Secret::new("sk-up".into(), "env X".into())),
            headers: vec![("openai-project".into(), "proj".into())],
            timeouts: Timeouts::default(),
            api_version: None,
            default_max_tokens: 4096,
            region: None,
            project: None,
            aws: None,
            token: None,
        };
        let o = Origin {
            tls: false,
            host: "127.0.0.1".into(),
            port: 9001,
            authority: "127.0.0.1:9001".into(),
            ca_file: None,
            max_idle: 8,
            idle_timeout: std::time::Duration::from_secs(1),
            local: false,
        };
        (p, o)
    }

    fn built(body: &str, endpoint: Endpoint) -> (String, String, bool) {
        built_for(provider(), body, endpoint)
    }

    fn built_for(
        (p, o): (Provider, Origin),
        body: &str,
        endpoint: Endpoint,
    ) -> (String, String, bool) {
        let d = Decoder::default().decode(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let r = Splice {
            provider: &p,
            api_key: p.api_key.as_ref(),
            origin: &o,
            endpoint,
            body: body.as_bytes(),
            decoded: &d,
            model: "up-\"model\"",
        };
        let injected = build(&mut out, &r);
        let s = String::from_utf8(out).unwrap();
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        (head.to_owned(), body.to_owned(), injected)
    }

    fn parse(body: &str) -> simd_json::OwnedValue {
        simd_json::to_owned_value(&mut body.as_bytes().to_vec()).expect("valid JSON")
    }

    #[test]
    fn splices_model_and_keeps_the_rest_byte_exact() {
        let body = r#"{ "messages": [{"role":"user","content":"x"}], "model":"alias", "temperature": 0.50}"#;
        let (head, out, injected) = built(body, Endpoint::Chat);
        assert!(!injected);
        assert_eq!(out, body.replace("alias", r#"up-\"model\""#));
        assert!(head.starts_with("POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:9001\r\n"));
        assert!(head.contains(&format!("content-length: {}", out.len())));
        assert!(head.contains("authorization: Bearer sk-up"));
        assert!(head.contains("openai-project: proj"));
    }

    #[test]
    fn streams_get_include_usage_in_every_shape() {
        for body in [
            r#"{"model":"a","stream":true}"#,
            r#"{"stream":true,"stream_options":{},"model":"a"}"#,
            r#"{"stream":true,"stream_options":{"x":1},"model":"a"}"#,
            r#"{"stream":true,"stream_options":{"include_usage":false,"x":1},"model":"a"}"#,
            r#"{"stream":true,"stream_options":null,"model":"a"}"#,
        ] {
            let (head, out, injected) = built(body, Endpoint::Completions);
            assert!(injected, "{body}");
            let v = parse(&out);
            assert_eq!(
                v["stream_options"]["include_usage"], true,
                "{body} -> {out}"
            );
            assert_eq!(v["model"], "up-\"model\"");
            assert!(head.contains(&format!("content-length: {}", out.len())));
        }
        let (_, out, injected) = built(
            r#"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#,
            Endpoint::Chat,
        );
        assert!(!injected);
        assert_eq!(parse(&out)["stream_options"]["include_usage"], true);
    }

    #[test]
    fn drops_what_the_vendor_rejects_and_nothing_else() {
        let groq = || {
            let (mut p, o) = provider();
            p.vendor = crate::providers::family::find("groq").unwrap();
            (p, o)
        };
        for body in [
            r#"{"logprobs":true,"top_logprobs":2,"model":"a","stream":true}"#,
            r#"{"model":"a", "logit_bias":{"5":[1,"}"]} , "n":1}"#,
            r#"{"model":"a","logprobs":true}"#,
            r#"{"logit_bias":{},"model":"a","top_logprobs":3,"logprobs":false}"#,
            r#"{"model":"a" , "n":1 , "logprobs":true ,"top_logprobs":2 }"#,
        ] {
            let (head, out, _) = built_for(groq(), body, Endpoint::Chat);
            let v = parse(&out);
            for f in ["logprobs", "top_logprobs", "logit_bias"] {
                assert!(v.get(f).is_none(), "{body} -> {out}");
            }
            assert_eq!(v["model"], "up-\"model\"", "{body} -> {out}");
            assert!(head.contains(&format!("content-length: {}", out.len())));
            // The same body goes to OpenAI untouched but for the model.
            let (_, plain, _) = built(body, Endpoint::Chat);
            assert!(parse(&plain).get("logprobs").is_some() || !body.contains("logprobs"));
        }
    }

    #[test]
    fn azure_puts_the_deployment_in_the_url_and_the_key_in_api_key() {
        let (mut p, o) = provider();
        p.vendor = crate::providers::family::find("azure").unwrap();
        p.base_path = String::new();
        p.api_version = Some("2024-10-21".into());
        let (head, _, _) = built_for((p, o), r#"{"model":"a"}"#, Endpoint::Chat);
        assert!(
            head.starts_with("POST /openai/deployments/up-%22model%22/chat/completions?api-version=2024-10-21 HTTP/1.1"),
            "{head}"
        );
        assert!(head.contains("\r\napi-key: sk-up"));
        assert!(!head.contains("authorization"));
        // A health check's models list is account-wide: no deployment in its path.
        let (mut p, o) = provider();
        p.vendor = crate::providers::family::find("azure").unwrap();
        p.base_path = String::new();
        p.api_version = Some("2024-10-21".into());
        let mut get = Vec::new();
        crate::providers::head::write_get(&mut get, &p, p.api_key.as_ref(), &o, "/models");
        let get = String::from_utf8(get).unwrap();
        assert!(
            get.starts_with("GET /openai/models?api-version=2024-10-21 HTTP/1.1\r\nhost: "),
            "{get}"
        );
        assert!(get.contains("\r\napi-key: sk-up") && get.ends_with("\r\n\r\n"));
    }

    #[test]
    fn reads_usage() {
        let u = usage_from_body(
            &mut Decoder::default(),
            br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
        );
        assert_eq!(
            u,
            Some(Usage {
                input: 12,
                output: 3,
                ..Usage::default()
            })
        );
        assert_eq!(
            usage_from_event(
                &mut Decoder::default(),
                br#"{"choices":[{"delta":{}}],"usage":null}"#
            ),
            None
        );
        let (u, only) = usage_from_event(
            &mut Decoder::default(),
            br#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#,
        )
        .unwrap();
        assert_eq!((u.input, u.output, only), (5, 7, true));
        let (_, only) = usage_from_event(
            &mut Decoder::default(),
            br#"{"choices":[{"index":0}],"usage": {"prompt_tokens":5}}"#,
        )
        .unwrap();
        assert!(!only);
    }

    #[test]
    fn reads_cached_and_reasoning_tokens() {
        // `prompt_tokens` already includes the cached share and `completion_tokens` the
        // reasoning share: neither is added on top.
        let want = Usage {
            input: 2000,
            output: 300,
            cache_read: 1500,
            cache_write: 0,
            reasoning: 120,
        };
        let body = br#"{"id":"x","usage":{"prompt_tokens":2000,"completion_tokens":300,"total_tokens":2300,"prompt_tokens_details":{"cached_tokens":1500,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":120,"audio_tokens":0}}}"#;
        assert_eq!(usage_from_body(&mut Decoder::default(), body), Some(want));
        // The final chunk `include_usage` adds to a stream.
        let chunk = br#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":2000,"completion_tokens":300,"prompt_tokens_details":{"cached_tokens":1500},"completion_tokens_details":{"reasoning_tokens":120}}}"#;
        assert_eq!(
            usage_from_event(&mut Decoder::default(), chunk),
            Some((want, true))
        );
        // Details that are absent or null count as zero.
        let bare =
            br#"{"usage":{"prompt_tokens":4,"completion_tokens":2,"prompt_tokens_details":null}}"#;
        let u = usage_from_body(&mut Decoder::default(), bare).unwrap();
        assert_eq!((u.input, u.cache_read, u.reasoning), (4, 0, 0));
    }
}
