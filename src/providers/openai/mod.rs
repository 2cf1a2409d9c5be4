//! The OpenAI wire protocol (and every OpenAI-compatible server): request building by splicing
//! the client's bytes, and usage extraction from responses and stream events.

use simd_json::prelude::*;

use super::{Endpoint, Usage};
use crate::config::{Origin, Provider};
use crate::json;
use crate::pipeline::decode::{Decoded, Decoder, StreamOptions};

/// Everything needed to build one upstream request.
pub struct Request<'a> {
    pub provider: &'a Provider,
    pub origin: &'a Origin,
    pub endpoint: Endpoint,
    pub body: &'a [u8],
    pub decoded: &'a Decoded,
    pub model: &'a str,
}

const INCLUDE_USAGE_MEMBER: &[u8] = b"\"stream_options\":{\"include_usage\":true},";

/// Writes the whole upstream request (head and body) into `out`. The body is the client's,
/// with `model` replaced and, for streams, `stream_options.include_usage` forced on so usage
/// can be accounted. Returns whether the gateway added `include_usage` (the client did not ask).
pub fn build(out: &mut Vec<u8>, r: &Request<'_>) -> bool {
    let mut model = Vec::with_capacity(r.model.len() + 8);
    json::push_escaped(&mut model, r.model.as_bytes());
    let mut edits: [(usize, usize, &[u8]); 2] = [
        (r.decoded.model.start, r.decoded.model.end, &model),
        (0, 0, b""),
    ];
    let mut injected = false;
    if r.decoded.stream && r.endpoint.streams() {
        injected = true;
        edits[1] = match &r.decoded.stream_options {
            StreamOptions::IncludeUsage => {
                injected = false;
                (0, 0, b"")
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
    }
    edits.sort_by_key(|e| e.0);
    let new_len = edits
        .iter()
        .fold(r.body.len(), |n, (s, e, with)| n + with.len() - (e - s));

    out.extend_from_slice(b"POST ");
    out.extend_from_slice(r.provider.base_path.as_bytes());
    out.extend_from_slice(r.endpoint.path().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(r.origin.authority.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    json::push_u64(out, new_len as u64);
    out.extend_from_slice(if r.decoded.stream {
        b"\r\naccept: text/event-stream".as_slice()
    } else {
        b"\r\naccept: application/json"
    });
    out.extend_from_slice(b"\r\nuser-agent: shardgate/");
    out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
    if let Some(key) = &r.provider.api_key {
        out.extend_from_slice(b"\r\nauthorization: Bearer ");
        out.extend_from_slice(key.expose().as_bytes());
    }
    for (name, value) in &r.provider.headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n\r\n");
    let mut at = 0;
    for (s, e, with) in edits {
        if s == 0 && e == 0 && with.is_empty() {
            continue;
        }
        out.extend_from_slice(&r.body[at..s]);
        out.extend_from_slice(with);
        at = e;
    }
    out.extend_from_slice(&r.body[at..]);
    injected
}

fn usage_of(v: simd_json::tape::Value<'_, '_>) -> Option<Usage> {
    let u = v.get("usage")?;
    let u = u.as_object()?;
    let n = |k: &str| u.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    Some(Usage {
        input: n("prompt_tokens"),
        output: n("completion_tokens"),
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
    use crate::config::{Secret, Timeouts};
    use crate::pipeline::decode::Decoder;
    use crate::providers::Protocol;

    fn provider() -> (Provider, Origin) {
        let p = Provider {
            name: "p".into(),
            protocol: Protocol::OpenAi,
            origin: Some(0),
            base_path: "/v1".into(),
            api_key: Some(Secret::new("sk-up".into(), "env X".into())),
            headers: vec![("openai-project".into(), "proj".into())],
            timeouts: Timeouts::default(),
        };
        let o = Origin {
            tls: false,
            host: "127.0.0.1".into(),
            port: 9001,
            authority: "127.0.0.1:9001".into(),
            ca_file: None,
            max_idle: 8,
            idle_timeout: std::time::Duration::from_secs(1),
        };
        (p, o)
    }

    fn built(body: &str, endpoint: Endpoint) -> (String, String, bool) {
        let (p, o) = provider();
        let d = Decoder::default().decode(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        let r = Request {
            provider: &p,
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
    fn reads_usage() {
        let u = usage_from_body(
            &mut Decoder::default(),
            br#"{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
        );
        assert_eq!(
            u,
            Some(Usage {
                input: 12,
                output: 3
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
}
