//! Criterion benchmarks of translation between protocols: a ~1 KB OpenAI chat request encoded
//! for each other upstream protocol, a whole answer decoded back, and a 66-event stream carried
//! across (per event, through the canonical form); then the other way round for the newer
//! ingresses: a ~1 KB Responses or Gemini request for an OpenAI upstream, and an OpenAI stream
//! written as each client's events. Same-protocol traffic never translates; its cost is
//! `hot_path`'s splice and SSE scan.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardgate::providers::adapter::Adapter;
use shardgate::providers::bedrock::{Bedrock, eventstream};
use shardgate::providers::canonical::Stamp;
use shardgate::providers::cohere::Cohere;
use shardgate::providers::gemini::Gemini;
use shardgate::providers::responses::Responses;
use shardgate::providers::translate::{self, StreamTranslator, Wire};

const STAMP: Stamp<'static> = Stamp {
    model: "upstream-model",
    created: 1_700_000_000,
    default_max_tokens: 4096,
    id: "",
};

fn filler() -> String {
    "lorem ipsum dolor sit amet ".repeat(8)
}

/// About 1 KB of chat: a system prompt, three turns, one tool.
fn request() -> Vec<u8> {
    let filler = filler();
    format!(
        r#"{{"model":"m","max_tokens":256,"temperature":0.3,"messages":[{{"role":"system","content":"You are terse. {filler}"}},{{"role":"user","content":"{filler}"}},{{"role":"assistant","content":"{filler}"}},{{"role":"user","content":"and now? {filler}"}}],"tools":[{{"type":"function","function":{{"name":"weather","description":"Weather now","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}]}}"#
    )
    .into_bytes()
}

fn upstreams() -> [(&'static str, &'static dyn Adapter); 5] {
    [
        ("anthropic", Wire::Anthropic.adapter()),
        ("cohere", &Cohere),
        ("gemini", &Gemini),
        ("bedrock", &Bedrock),
        ("responses", &Responses),
    ]
}

fn requests(c: &mut Criterion) {
    let body = request();
    let mut g = c.benchmark_group("translate_request_from_openai");
    g.throughput(Throughput::Bytes(body.len() as u64));
    for (name, to) in upstreams() {
        let mut work = body.clone();
        let mut out = Vec::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                work.copy_from_slice(&body);
                out.clear();
                black_box(
                    translate::request(Wire::OpenAi, to, &mut work, &STAMP, &mut out).unwrap(),
                )
            })
        });
    }
    g.finish();
}

/// The same ~1 KB conversation as a Responses and a Gemini client send it.
fn ingress_requests(c: &mut Criterion) {
    let f = filler();
    let tool_schema = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;
    let bodies = [
        (
            "responses",
            Wire::Responses,
            format!(
                r#"{{"model":"m","max_output_tokens":256,"temperature":0.3,"instructions":"You are terse. {f}","input":[{{"role":"user","content":"{f}"}},{{"role":"assistant","content":[{{"type":"output_text","text":"{f}"}}]}},{{"role":"user","content":"and now? {f}"}}],"tools":[{{"type":"function","name":"weather","description":"Weather now","parameters":{tool_schema}}}]}}"#
            ),
        ),
        (
            "gemini",
            Wire::Gemini,
            format!(
                r#"{{"systemInstruction":{{"parts":[{{"text":"You are terse. {f}"}}]}},"contents":[{{"role":"user","parts":[{{"text":"{f}"}}]}},{{"role":"model","parts":[{{"text":"{f}"}}]}},{{"role":"user","parts":[{{"text":"and now? {f}"}}]}}],"tools":[{{"functionDeclarations":[{{"name":"weather","description":"Weather now","parametersJsonSchema":{tool_schema}}}]}}],"generationConfig":{{"maxOutputTokens":256,"temperature":0.3}}}}"#
            ),
        ),
    ];
    let mut g = c.benchmark_group("translate_request_to_openai");
    for (name, from, body) in bodies {
        let body = body.into_bytes();
        let mut work = body.clone();
        let mut out = Vec::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                work.copy_from_slice(&body);
                out.clear();
                black_box(
                    translate::request(from, Wire::OpenAi.adapter(), &mut work, &STAMP, &mut out)
                        .unwrap(),
                )
            })
        });
    }
    g.finish();
}

fn answers(c: &mut Criterion) {
    let words = "tok ".repeat(60);
    let bodies = [
        (
            "anthropic",
            Wire::Anthropic.adapter(),
            format!(
                r#"{{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[{{"type":"text","text":"{words}"}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":250,"output_tokens":60}}}}"#
            ),
        ),
        (
            "cohere",
            &Cohere as &dyn Adapter,
            format!(
                r#"{{"id":"r1","finish_reason":"COMPLETE","message":{{"role":"assistant","content":[{{"type":"text","text":"{words}"}}]}},"usage":{{"tokens":{{"input_tokens":250,"output_tokens":60}}}}}}"#
            ),
        ),
        (
            "gemini",
            &Gemini as &dyn Adapter,
            format!(
                r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"{words}"}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":250,"candidatesTokenCount":60,"totalTokenCount":310}},"modelVersion":"g","responseId":"r1"}}"#
            ),
        ),
        (
            "bedrock",
            &Bedrock as &dyn Adapter,
            format!(
                r#"{{"output":{{"message":{{"role":"assistant","content":[{{"text":"{words}"}}]}}}},"stopReason":"end_turn","usage":{{"inputTokens":250,"outputTokens":60,"totalTokens":310}},"metrics":{{"latencyMs":100}}}}"#
            ),
        ),
        (
            "responses",
            &Responses as &dyn Adapter,
            format!(
                r#"{{"id":"resp_1","object":"response","status":"completed","model":"g","output":[{{"type":"message","id":"msg_1","role":"assistant","content":[{{"type":"output_text","text":"{words}","annotations":[]}}]}}],"usage":{{"input_tokens":250,"output_tokens":60,"total_tokens":310}}}}"#
            ),
        ),
    ];
    let mut g = c.benchmark_group("translate_answer_to_openai");
    for (name, from, body) in bodies {
        let body = body.into_bytes();
        let mut work = body.clone();
        let mut out = Vec::with_capacity(4096);
        g.bench_function(name, |b| {
            b.iter(|| {
                work.copy_from_slice(&body);
                out.clear();
                black_box(
                    translate::response(from, Wire::OpenAi, &mut work, &STAMP, &mut out).unwrap(),
                )
            })
        });
    }
    g.finish();
}

/// 66 upstream events of each protocol: a start, 62 or so text deltas, the end.
fn upstream_streams() -> Vec<(&'static str, &'static dyn Adapter, Vec<u8>)> {
    let mut anthropic = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":250,\"output_tokens\":0}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    let mut cohere = String::from(
        "event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"m\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\nevent: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n",
    );
    let mut gemini = String::new();
    let mut responses = String::from(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"g\",\"status\":\"in_progress\",\"output\":[]}}\n\nevent: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\",\"role\":\"assistant\",\"content\":[]}}\n\n",
    );
    let mut bedrock = Vec::new();
    eventstream::event("messageStart", br#"{"role":"assistant"}"#, &mut bedrock);
    for i in 0..62 {
        anthropic.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"tok{i} \"}}}}\n\n"));
        cohere.push_str(&format!("event: content-delta\ndata: {{\"type\":\"content-delta\",\"index\":0,\"delta\":{{\"message\":{{\"content\":{{\"text\":\"tok{i} \"}}}}}}}}\n\n"));
        responses.push_str(&format!("event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":{},\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"tok{i} \"}}\n\n", i + 2));
        let delta = format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"tok{i} "}}}}"#);
        eventstream::event("contentBlockDelta", delta.as_bytes(), &mut bedrock);
    }
    for i in 0..65 {
        gemini.push_str(&format!("data: {{\"candidates\":[{{\"content\":{{\"role\":\"model\",\"parts\":[{{\"text\":\"tok{i} \"}}]}},\"index\":0}}],\"modelVersion\":\"g\",\"responseId\":\"r1\"}}\n\n"));
    }
    gemini.push_str("data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":250,\"candidatesTokenCount\":65,\"totalTokenCount\":315},\"modelVersion\":\"g\",\"responseId\":\"r1\"}\n\n");
    anthropic.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":62}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    cohere.push_str("event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\nevent: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"tokens\":{\"input_tokens\":250,\"output_tokens\":62}}}}\n\n");
    responses.push_str("event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":64,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"msg_1\"}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":65,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":250,\"output_tokens\":62}}}\n\n");
    eventstream::event(
        "contentBlockStop",
        br#"{"contentBlockIndex":0}"#,
        &mut bedrock,
    );
    eventstream::event("messageStop", br#"{"stopReason":"end_turn"}"#, &mut bedrock);
    eventstream::event(
        "metadata",
        br#"{"usage":{"inputTokens":250,"outputTokens":62,"totalTokens":312},"metrics":{"latencyMs":90}}"#,
        &mut bedrock,
    );
    vec![
        (
            "anthropic",
            Wire::Anthropic.adapter(),
            anthropic.into_bytes(),
        ),
        ("cohere", &Cohere, cohere.into_bytes()),
        ("gemini", &Gemini, gemini.into_bytes()),
        ("bedrock", &Bedrock, bedrock),
        ("responses", &Responses, responses.into_bytes()),
    ]
}

fn run_stream(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    (from, to): (&'static dyn Adapter, Wire),
    bytes: &[u8],
) {
    let mut out = Vec::with_capacity(16 << 10);
    g.bench_function(name, |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(from, to, &STAMP, true);
            out.clear();
            for part in bytes.chunks(512) {
                t.feed(part, &mut out).unwrap();
            }
            assert!(t.done());
            black_box(out.len())
        })
    });
}

fn streams(c: &mut Criterion) {
    let mut g = c.benchmark_group("translate_stream_to_openai");
    // 66 upstream events each: the time per iteration over 66 is the cost per event.
    g.throughput(Throughput::Elements(66));
    for (name, from, bytes) in upstream_streams() {
        run_stream(&mut g, name, (from, Wire::OpenAi), &bytes);
    }
    g.finish();
}

/// An OpenAI upstream's 66 chunks, written as each other client's stream.
fn ingress_streams(c: &mut Criterion) {
    let mut openai = String::new();
    for i in 0..64 {
        openai.push_str(&format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"));
    }
    openai.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":250,\"completion_tokens\":64,\"total_tokens\":314}}\n\ndata: [DONE]\n\n");
    let mut g = c.benchmark_group("translate_stream_from_openai");
    g.throughput(Throughput::Elements(66));
    for (name, to) in [
        ("anthropic", Wire::Anthropic),
        ("responses", Wire::Responses),
        ("gemini", Wire::Gemini),
    ] {
        run_stream(
            &mut g,
            name,
            (Wire::OpenAi.adapter(), to),
            openai.as_bytes(),
        );
    }
    g.finish();
}

criterion_group!(
    benches,
    requests,
    ingress_requests,
    answers,
    streams,
    ingress_streams
);
criterion_main!(benches);
