//! Criterion benchmarks of the request path's pieces: body decode, upstream request splice,
//! key lookup, alias lookup, route selection, SSE split + usage scan, histogram record.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shardgate::auth::{KeySpec, KeyTable};
use shardgate::config;
use shardgate::http::sse;
use shardgate::pipeline::decode::Decoder;
use shardgate::providers::{Endpoint, openai};

fn body(size: usize) -> Vec<u8> {
    let head = r#"{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":""#;
    let tail = r#""}],"stream":false}"#;
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut b = head.as_bytes().to_vec();
    b.extend(std::iter::repeat_n(b'x', fill));
    b.extend_from_slice(tail.as_bytes());
    b
}

const CONFIG: &str = r#"
providers:
  up: { protocol: openai, base_url: "http://127.0.0.1:9001/v1", api_key: { env: K } }
models:
  gpt-4o-mini: { targets: [ { provider: up, model: upstream-mini } ] }
"#;

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for size in [250usize, 4 << 10, 64 << 10] {
        let b = body(size);
        g.throughput(Throughput::Bytes(b.len() as u64));
        let mut d = Decoder::default();
        g.bench_with_input(BenchmarkId::from_parameter(size), &b, |bench, b| {
            bench.iter(|| black_box(d.decode(black_box(b)).unwrap()))
        });
    }
    g.finish();
}

fn splice(c: &mut Criterion) {
    let snap = config::load_str(CONFIG, &|_| Some("sk-up".into())).unwrap();
    let provider = &snap.providers[0];
    let origin = &snap.origins[0];
    let mut g = c.benchmark_group("splice");
    for size in [250usize, 4 << 10] {
        let b = body(size);
        let decoded = Decoder::default().decode(&b).unwrap();
        let mut out = Vec::with_capacity(size + 512);
        g.bench_with_input(BenchmarkId::from_parameter(size), &b, |bench, b| {
            bench.iter(|| {
                out.clear();
                let r = shardgate::providers::adapter::Splice {
                    provider,
                    api_key: provider.api_key.as_ref(),
                    origin,
                    endpoint: Endpoint::Chat,
                    body: b,
                    decoded: &decoded,
                    model: "upstream-mini",
                };
                black_box(openai::build(&mut out, &r));
            })
        });
    }
    g.finish();
}

fn lookups(c: &mut Criterion) {
    let spec = |i: usize| KeySpec {
        id: format!("key_{i}"),
        name: format!("k{i}"),
        hash: shardgate::auth::digest(format!("sg-key-{i:05}").as_bytes()),
        ..KeySpec::default()
    };
    let now = shardgate::auth::now_ms();
    for n in [1_000, 10_000] {
        let (keys, _) = KeyTable::build((0..n).map(spec).collect(), false);
        c.bench_function(&format!("key_lookup_{n}_keys"), |b| {
            b.iter(|| {
                black_box(
                    keys.authenticate(Some(black_box(b"sg-key-00500")), now)
                        .unwrap(),
                )
            })
        });
    }
    let snap = config::load_str(CONFIG, &|_| Some("sk-up".into())).unwrap();
    c.bench_function("alias_lookup", |b| {
        b.iter(|| black_box(snap.model(black_box("gpt-4o-mini")).is_some()))
    });
}

const ROUTES: &str = r#"
providers:
  up: { protocol: openai, base_url: "http://127.0.0.1:9001/v1", api_key: { env: K } }
models:
  single: { targets: [ { provider: up, model: gpt-4o-mini } ] }
  spread:
    strategy: least-latency
    targets:
      - { provider: up, model: a }
      - { provider: up, model: b, weight: 2 }
      - { provider: up, model: c }
      - { provider: up, model: d }
    rules:
      - { when: { tag: batch }, targets: [up/c] }
"#;

/// A plan plus the started/finished bookkeeping of its first attempt: what routing adds to a
/// request that succeeds at once.
fn route(c: &mut Criterion) {
    use std::time::{Duration, Instant};

    use shardgate::routing::{Facts, Outcome, Plan, Router};
    let snap = config::load_str(ROUTES, &|_| Some("sk-up".into())).unwrap();
    let mut g = c.benchmark_group("route");
    let facts = Facts {
        tags: b"interactive, eu",
        prompt_tokens: 1200,
        max_tokens: Some(256),
        ..Facts::default()
    };
    let t0 = Instant::now();
    for (name, alias) in [
        ("weighted_1_target", "single"),
        ("least_latency_4_targets", "spread"),
    ] {
        let (mi, model) = snap.model(alias).unwrap();
        let mut router = Router::new(&snap);
        let mut plan = Plan::default();
        let mut n = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                let now = t0 + Duration::from_micros(n);
                let rand = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                router.plan(mi, model, black_box(&facts), now, rand, &mut plan);
                let t = plan.first().unwrap();
                router.started(mi, t, now);
                let ttfb = Duration::from_millis(100 + (rand >> 60));
                let outcome = Outcome::Success {
                    ttfb,
                    total: ttfb * 2,
                };
                router.finished(mi, t, outcome, now);
                black_box(t)
            })
        });
        let mut router = Router::new(&snap);
        g.bench_function(format!("{name}_plan_only"), |b| {
            b.iter(|| {
                n += 1;
                let rand = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                router.plan(mi, model, black_box(&facts), t0, rand, &mut plan);
                black_box(plan.first())
            })
        });
    }
    g.finish();
}

fn sse_scan(c: &mut Criterion) {
    let mut stream = Vec::new();
    for i in 0..64 {
        stream.extend_from_slice(format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}],\"usage\":null}}\n\n").as_bytes());
    }
    stream.extend_from_slice(b"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":64}}\n\ndata: [DONE]\n\n");
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Elements(66));
    let mut json = Decoder::default();
    g.bench_function("split_and_usage_scan_66_events", |b| {
        b.iter(|| {
            let mut s = sse::Splitter::default();
            let mut usage = None;
            for part in stream.chunks(512) {
                s.feed(part, |e| {
                    if let Some(u) =
                        sse::data(e).and_then(|d| openai::usage_from_event(&mut json, d))
                    {
                        usage = Some(u);
                    }
                })
                .expect("events within the bound");
            }
            black_box(usage)
        })
    });
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 2).unwrap();
    let mut v = 1u64;
    c.bench_function("histogram_record", |b| {
        b.iter(|| {
            v = v.wrapping_mul(6364136223846793005).wrapping_add(1);
            h.record(black_box(v % 1_000_000 + 1)).unwrap();
        })
    });
}

criterion_group!(benches, decode, splice, lookups, route, sse_scan, histogram);
criterion_main!(benches);
