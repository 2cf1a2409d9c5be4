//! Golden translation fixtures: `tests/fixtures/<upstream protocol>/<case>/`.
//!
//! `anthropic/` cases are an OpenAI client in front of an Anthropic provider; `openai/` cases an
//! Anthropic client in front of an OpenAI-protocol provider; `cohere/` cases an OpenAI client in
//! front of a Cohere provider. Each case holds:
//!
//! - `request.json` — what the client sends;
//! - `upstream_request.json` — the exact body the provider must receive (its `model` is the
//!   target model the gateway is configured with);
//! - the provider's answer: `upstream_response.json`, `upstream.sse`, or an error body in
//!   `upstream_error.json` with its status in `upstream_status`;
//! - what the client must get: `response.json`, `response.sse`, or `error.json` with the
//!   status in `client_status`;
//! - optionally `dropped`: request fields the translation must report as dropped, one a line.
//!
//! JSON is compared as values; SSE event by event (event name and data). The stream translator
//! gets the usage setting the request asked for. Every SSE case is also replayed split by each
//! byte-boundary pattern below, and must give the same output.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shardgate::providers::adapter::Adapter;
use shardgate::providers::canonical::Stamp;
use shardgate::providers::cohere::Cohere;
use shardgate::providers::translate::{self, StreamTranslator, Wire};

const CREATED: u64 = 1_700_000_000;

fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(name)).ok()
}

fn json(bytes: &[u8], what: &str) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// An SSE body as (event name, data) pairs; data parsed as JSON when it is JSON.
fn sse_events(bytes: &[u8]) -> Vec<(Option<String>, Value)> {
    let text = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if data.is_empty() {
                return None;
            }
            let data = data.join("\n");
            let value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            Some((name, value))
        })
        .collect()
}

fn cases(protocol: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(protocol);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Replays the stream in pieces cut by `cuts` (a pattern of piece lengths, repeated).
fn translate_stream(
    (upstream, ingress): (&'static dyn Adapter, Wire),
    stamp: &Stamp<'_>,
    include_usage: bool,
    sse: &[u8],
    cuts: &[usize],
) -> Vec<u8> {
    let mut t = StreamTranslator::new(upstream, ingress, stamp, include_usage);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < sse.len() {
        let n = cuts[i % cuts.len()].max(1).min(sse.len() - at);
        t.feed(&sse[at..at + n], &mut out)
            .expect("stream translates");
        at += n;
        i += 1;
    }
    out
}

fn run_case(dir: &Path, upstream: &'static dyn Adapter, ingress: Wire) {
    let name = dir.display().to_string();
    let request = read(dir, "request.json").unwrap_or_else(|| panic!("{name}: no request.json"));
    let want_upstream = json(
        &read(dir, "upstream_request.json").expect("upstream_request.json"),
        &name,
    );
    let model = want_upstream["model"]
        .as_str()
        .expect("upstream_request.json has a model");
    let stamp = Stamp {
        model,
        created: CREATED,
        default_max_tokens: 4096,
    };

    let mut body = request.clone();
    let mut out = Vec::new();
    let t = translate::request(ingress, upstream, &mut body, &stamp, &mut out)
        .unwrap_or_else(|e| panic!("{name}: request did not translate: {e}"));
    assert_eq!(json(&out, &name), want_upstream, "{name}: upstream request");
    if let Some(dropped) = read(dir, "dropped") {
        let want: Vec<String> = String::from_utf8(dropped)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(t.dropped, want, "{name}: dropped fields");
    }

    if let Some(sse) = read(dir, "upstream.sse") {
        assert!(t.stream, "{name}: a streamed case must ask for a stream");
        let want = sse_events(&read(dir, "response.sse").expect("response.sse"));
        let wires = (upstream, ingress);
        let whole = translate_stream(wires, &stamp, t.include_usage, &sse, &[sse.len()]);
        assert_eq!(
            sse_events(&whole),
            want,
            "{name}: client stream\n{}",
            String::from_utf8_lossy(&whole)
        );
        for cuts in [&[1][..], &[2], &[3, 7], &[5, 1, 11], &[13], &[64, 3]] {
            let split = translate_stream(wires, &stamp, t.include_usage, &sse, cuts);
            assert_eq!(
                split, whole,
                "{name}: output differs when input is cut by {cuts:?}"
            );
        }
    } else if let Some(mut resp) = read(dir, "upstream_response.json") {
        let mut out = Vec::new();
        translate::response(upstream, ingress, &mut resp, &stamp, &mut out)
            .unwrap_or_else(|e| panic!("{name}: response did not translate: {e}"));
        let want = json(&read(dir, "response.json").expect("response.json"), &name);
        assert_eq!(json(&out, &name), want, "{name}: client response");
    } else {
        let body = read(dir, "upstream_error.json").expect("an upstream answer");
        let status: u16 = String::from_utf8(read(dir, "upstream_status").expect("upstream_status"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let e = translate::classify(upstream, status, &body);
        let mut out = Vec::new();
        ingress.ingress().error_body(&e, &mut out);
        let want = json(&read(dir, "error.json").expect("error.json"), &name);
        assert_eq!(json(&out, &name), want, "{name}: client error body");
        let want_status: u16 =
            String::from_utf8(read(dir, "client_status").expect("client_status"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
        assert_eq!(e.kind.status(), want_status, "{name}: client status");
    }
}

/// One SSE fixture: its upstream, its ingress, the target model, the usage setting its request
/// asks, and the upstream's stream.
type StreamCase = (&'static dyn Adapter, Wire, String, bool, Vec<u8>);

/// Every SSE fixture of every direction.
fn stream_cases() -> Vec<StreamCase> {
    let mut out = Vec::new();
    let directions: [(&str, &'static dyn Adapter, Wire); 3] = [
        ("anthropic", Wire::Anthropic.adapter(), Wire::OpenAi),
        ("openai", Wire::OpenAi.adapter(), Wire::Anthropic),
        ("cohere", &Cohere, Wire::OpenAi),
    ];
    for (dir, upstream, ingress) in directions {
        for case in cases(dir) {
            let Some(sse) = read(&case, "upstream.sse") else {
                continue;
            };
            let want = json(&read(&case, "upstream_request.json").unwrap(), "model");
            let model = want["model"].as_str().unwrap().to_string();
            let mut body = read(&case, "request.json").unwrap();
            let stamp = Stamp {
                model: &model,
                created: CREATED,
                default_max_tokens: 4096,
            };
            let t =
                translate::request(ingress, upstream, &mut body, &stamp, &mut Vec::new()).unwrap();
            out.push((upstream, ingress, model, t.include_usage, sse));
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever byte boundaries a stream arrives in, every decoder gives the same output.
    #[test]
    fn streams_translate_the_same_at_any_split(cuts in proptest::collection::vec(1usize..200, 1..12)) {
        for (upstream, ingress, model, usage, sse) in stream_cases() {
            let stamp = Stamp { model: &model, created: CREATED, default_max_tokens: 4096 };
            let whole = translate_stream((upstream, ingress), &stamp, usage, &sse, &[sse.len()]);
            let split = translate_stream((upstream, ingress), &stamp, usage, &sse, &cuts);
            proptest::prop_assert_eq!(split, whole);
        }
    }
}

#[test]
fn openai_client_to_anthropic_provider() {
    for dir in cases("anthropic") {
        run_case(&dir, Wire::Anthropic.adapter(), Wire::OpenAi);
    }
}

#[test]
fn anthropic_client_to_openai_provider() {
    for dir in cases("openai") {
        run_case(&dir, Wire::OpenAi.adapter(), Wire::Anthropic);
    }
}

#[test]
fn openai_client_to_cohere_provider() {
    for dir in cases("cohere") {
        run_case(&dir, &Cohere, Wire::OpenAi);
    }
}
