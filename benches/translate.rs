//! Criterion benchmarks of translation between protocols: a ~1 KB OpenAI chat request encoded
//! for each other upstream protocol, a whole answer decoded back, and a 66-event stream carried
//! across (per event, through the canonical form). Same-protocol traffic never translates; its
//! cost is `hot_path`'s splice and SSE scan.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardgate::providers::adapter::Adapter;
use shardgate::providers::canonical::Stamp;
use shardgate::providers::cohere::Cohere;
use shardgate::providers::translate::{self, StreamTranslator, Wire};

const STAMP: Stamp<'static> = Stamp {
    model: "upstream-model",
    created: 1_700_000_000,
    default_max_tokens: 4096,
};

/// About 1 KB of chat: a system prompt, three turns, one tool.
fn request() -> Vec<u8> {
    let filler = "lorem ipsum dolor sit amet ".repeat(8);
    format!(
        r#"{{"model":"m","max_tokens":256,"temperature":0.3,"messages":[{{"role":"system","content":"You are terse. {filler}"}},{{"role":"user","content":"{filler}"}},{{"role":"assistant","content":"{filler}"}},{{"role":"user","content":"and now? {filler}"}}],"tools":[{{"type":"function","function":{{"name":"weather","description":"Weather now","parameters":{{"type":"object","properties":{{"city":{{"type":"string"}}}}}}}}}}]}}"#
    )
    .into_bytes()
}

fn upstreams() -> [(&'static str, &'static dyn Adapter); 2] {
    [
        ("anthropic", Wire::Anthropic.adapter()),
        ("cohere", &Cohere),
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

fn streams(c: &mut Criterion) {
    let mut anthropic = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":250,\"output_tokens\":0}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    );
    let mut cohere = String::from(
        "event: message-start\ndata: {\"type\":\"message-start\",\"id\":\"m\",\"delta\":{\"message\":{\"role\":\"assistant\"}}}\n\nevent: content-start\ndata: {\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}}\n\n",
    );
    for i in 0..62 {
        anthropic.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"tok{i} \"}}}}\n\n"));
        cohere.push_str(&format!("event: content-delta\ndata: {{\"type\":\"content-delta\",\"index\":0,\"delta\":{{\"message\":{{\"content\":{{\"text\":\"tok{i} \"}}}}}}}}\n\n"));
    }
    anthropic.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":62}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    cohere.push_str("event: content-end\ndata: {\"type\":\"content-end\",\"index\":0}\n\nevent: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{\"tokens\":{\"input_tokens\":250,\"output_tokens\":62}}}}\n\n");
    let mut g = c.benchmark_group("translate_stream_to_openai");
    // 66 upstream events each: the time per iteration over 66 is the cost per event.
    g.throughput(Throughput::Elements(66));
    for (name, from, sse) in [
        ("anthropic", Wire::Anthropic.adapter(), anthropic),
        ("cohere", &Cohere as &dyn Adapter, cohere),
    ] {
        let mut out = Vec::with_capacity(16 << 10);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t = StreamTranslator::new(from, Wire::OpenAi, &STAMP, true);
                out.clear();
                for part in sse.as_bytes().chunks(512) {
                    t.feed(part, &mut out).unwrap();
                }
                assert!(t.done());
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, requests, answers, streams);
criterion_main!(benches);
