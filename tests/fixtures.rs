//! Golden translation fixtures: `tests/fixtures/<upstream protocol>/<case>/`.
//!
//! `openai/` cases are an Anthropic client in front of an OpenAI-protocol provider; the cases of
//! every other folder (`anthropic/`, `cohere/`, `gemini/`, `bedrock/`, `responses/`) an OpenAI
//! client in front of a provider of that protocol; and the `<wire>_ingress/` folders a client of
//! that wire (`responses`, `gemini`) in front of an OpenAI provider. Each case holds:
//!
//! - `request.json` — what the client sends;
//! - `upstream_request.json` — the exact body the provider must receive (its `model` is the
//!   target model the gateway is configured with; for protocols that put the model in the path
//!   rather than the body, a `model` file names it);
//! - the provider's answer: `upstream_response.json`, `upstream.sse` (or, for Bedrock's binary
//!   event stream, `upstream.events`: one `{"event"|"exception": type, "payload": {...}}` a line,
//!   framed by the event-stream encoder), or an error body in `upstream_error.json` with its
//!   status in `upstream_status`;
//! - what the client must get: `response.json`, `response.sse`, or `error.json` with the
//!   status in `client_status`;
//! - `dropped`: the request fields the translation must report as dropped, one a line (no file:
//!   none).
//!
//! JSON is compared as values; SSE event by event (event name and data). The stream translator
//! gets the usage setting the request asked for. Every SSE case is also replayed split by each
//! byte-boundary pattern below, and must give the same output.
//!
//! `SHARDGATE_BLESS=1` writes the expected files a new case lacks (never overwrites one), for a
//! person to read and correct before committing them.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shardgate::providers::adapter::Adapter;
use shardgate::providers::bedrock::{Bedrock, eventstream};
use shardgate::providers::canonical::Stamp;
use shardgate::providers::cohere::Cohere;
use shardgate::providers::gemini::Gemini;
use shardgate::providers::responses::Responses;
use shardgate::providers::translate::{self, StreamTranslator, Wire};

const CREATED: u64 = 1_700_000_000;
/// The gateway request id an answer is named after when its upstream gives it none.
const REQUEST_ID: &str = "gw7f3a9c";

fn read(dir: &Path, name: &str) -> Option<Vec<u8>> {
    std::fs::read(dir.join(name)).ok()
}

fn bless() -> bool {
    std::env::var_os("SHARDGATE_BLESS").is_some()
}

/// The expected file `name`, written from `got` first when blessing and it is missing.
fn expected(dir: &Path, name: &str, got: &[u8]) -> Vec<u8> {
    if let Some(bytes) = read(dir, name) {
        return bytes;
    }
    assert!(bless(), "{}: no {name}", dir.display());
    let text = match serde_json::from_slice::<Value>(got) {
        Ok(v) if name.ends_with(".json") => serde_json::to_string_pretty(&v).unwrap() + "\n",
        _ => String::from_utf8_lossy(got).into_owned(),
    };
    std::fs::write(dir.join(name), &text).unwrap();
    text.into_bytes()
}

/// The provider's stream: `upstream.sse` as is, or `upstream.events` framed as an event stream.
fn upstream_stream(dir: &Path) -> Option<Vec<u8>> {
    if let Some(sse) = read(dir, "upstream.sse") {
        return Some(sse);
    }
    let lines = read(dir, "upstream.events")?;
    let mut out = Vec::new();
    for line in String::from_utf8(lines).unwrap().lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v = json(line.as_bytes(), "upstream.events line");
        let payload = serde_json::to_vec(&v["payload"]).unwrap();
        if let Some(kind) = v["event"].as_str() {
            eventstream::event(kind, &payload, &mut out);
        } else {
            let kind = v["exception"].as_str().expect("an event or an exception");
            let headers = [
                (":exception-type", kind),
                (":content-type", "application/json"),
                (":message-type", "exception"),
            ];
            eventstream::encode(&headers, &payload, &mut out);
        }
    }
    Some(out)
}

/// Whether the request streams, for a wire that says so in its path (Gemini's method) rather
/// than its body: a case with an upstream stream stands for `:streamGenerateContent`.
fn path_stream(ingress: Wire, dir: &Path) -> Option<bool> {
    (ingress == Wire::Gemini).then(|| upstream_stream(dir).is_some())
}

/// The target model: the `model` file, or the `model` of the expected upstream body.
fn target_model(dir: &Path) -> String {
    if let Some(m) = read(dir, "model") {
        return String::from_utf8(m).unwrap().trim().to_string();
    }
    let want = json(
        &read(dir, "upstream_request.json").expect("upstream_request.json or model"),
        "upstream_request.json",
    );
    want["model"]
        .as_str()
        .expect("upstream_request.json has a model")
        .to_string()
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
    let model = &target_model(dir);
    let stamp = Stamp {
        model,
        created: CREATED,
        default_max_tokens: 4096,
        id: REQUEST_ID,
    };

    let mut body = request.clone();
    let mut out = Vec::new();
    let stream = path_stream(ingress, dir);
    let t = translate::request_as(ingress, upstream, &mut body, &stamp, &mut out, stream)
        .unwrap_or_else(|e| panic!("{name}: request did not translate: {e}"));
    let want_upstream = json(&expected(dir, "upstream_request.json", &out), &name);
    assert_eq!(json(&out, &name), want_upstream, "{name}: upstream request");
    // A case without a `dropped` file drops nothing.
    let dropped = match read(dir, "dropped") {
        None if bless() && !t.dropped.is_empty() => {
            expected(dir, "dropped", t.dropped.join("\n").as_bytes())
        }
        other => other.unwrap_or_default(),
    };
    let want: Vec<String> = String::from_utf8(dropped)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(t.dropped, want, "{name}: dropped fields");

    if let Some(sse) = upstream_stream(dir) {
        assert!(t.stream, "{name}: a streamed case must ask for a stream");
        let wires = (upstream, ingress);
        let whole = translate_stream(wires, &stamp, t.include_usage, &sse, &[sse.len()]);
        let want = sse_events(&expected(dir, "response.sse", &whole));
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
        let want = json(&expected(dir, "response.json", &out), &name);
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
        let want = json(&expected(dir, "error.json", &out), &name);
        assert_eq!(json(&out, &name), want, "{name}: client error body");
        let status = e.kind.status().to_string();
        let want_status: u16 = String::from_utf8(expected(dir, "client_status", status.as_bytes()))
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

/// Each fixture folder: its upstream and its ingress.
const DIRECTIONS: [(&str, &dyn Adapter, Wire); 8] = [
    (
        "anthropic",
        &shardgate::providers::anthropic::Anthropic,
        Wire::OpenAi,
    ),
    (
        "openai",
        &shardgate::providers::openai::OpenAi,
        Wire::Anthropic,
    ),
    ("cohere", &Cohere, Wire::OpenAi),
    ("gemini", &Gemini, Wire::OpenAi),
    ("bedrock", &Bedrock, Wire::OpenAi),
    ("responses", &Responses, Wire::OpenAi),
    (
        "responses_ingress",
        &shardgate::providers::openai::OpenAi,
        Wire::Responses,
    ),
    (
        "gemini_ingress",
        &shardgate::providers::openai::OpenAi,
        Wire::Gemini,
    ),
];

/// Every stream fixture of every direction.
fn stream_cases() -> Vec<StreamCase> {
    let mut out = Vec::new();
    for (dir, upstream, ingress) in DIRECTIONS {
        for case in cases(dir) {
            let Some(sse) = upstream_stream(&case) else {
                continue;
            };
            let model = target_model(&case);
            let mut body = read(&case, "request.json").unwrap();
            let stamp = Stamp {
                model: &model,
                created: CREATED,
                default_max_tokens: 4096,
                id: REQUEST_ID,
            };
            let stream = path_stream(ingress, &case);
            let t = translate::request_as(
                ingress,
                upstream,
                &mut body,
                &stamp,
                &mut Vec::new(),
                stream,
            )
            .unwrap();
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
            let stamp = Stamp { model: &model, created: CREATED, default_max_tokens: 4096, id: REQUEST_ID };
            let whole = translate_stream((upstream, ingress), &stamp, usage, &sse, &[sse.len()]);
            let split = translate_stream((upstream, ingress), &stamp, usage, &sse, &cuts);
            proptest::prop_assert_eq!(split, whole);
        }
    }
}

fn run_direction(folder: &str) {
    let (_, upstream, ingress) = DIRECTIONS
        .into_iter()
        .find(|d| d.0 == folder)
        .expect("a direction");
    for dir in cases(folder) {
        run_case(&dir, upstream, ingress);
    }
}

#[test]
fn openai_client_to_anthropic_provider() {
    run_direction("anthropic");
}

#[test]
fn anthropic_client_to_openai_provider() {
    run_direction("openai");
}

#[test]
fn openai_client_to_cohere_provider() {
    run_direction("cohere");
}

#[test]
fn openai_client_to_gemini_provider() {
    run_direction("gemini");
}

#[test]
fn openai_client_to_bedrock_provider() {
    run_direction("bedrock");
}

#[test]
fn openai_client_to_responses_provider() {
    run_direction("responses");
}

#[test]
fn responses_client_to_openai_provider() {
    run_direction("responses_ingress");
}

#[test]
fn gemini_client_to_openai_provider() {
    run_direction("gemini_ingress");
}
