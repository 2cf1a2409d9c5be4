//! Criterion benchmarks of the guardrail checks on a ~4 KB request text: English chat prose
//! with some code, numbers, dates and versions. Clean (no PII) through PII + secrets — the
//! goal is under 20 µs — and the same text with six findings scanned and redacted; then the
//! injection check and a ten-word deny list on the clean text; then the clean text streamed in
//! 16-byte deltas through a hold-back with the PII check.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shardgate::guard::stream::Holdback;
use shardgate::guard::{Check, Finding, PiiSet, Placeholders, redact};

const PROSE: &str = r#"Hi! I'm working on a small service that ingests events from our mobile apps and writes them to a queue. We upgraded from version 2.3.1 to 2.4.0 on 2024-01-15 and since then roughly 3% of the requests time out after 30 seconds. The p99 latency went from 180 ms to 2.4 s, which is odd because the median is unchanged. Could you help me figure out what is going on? Here is the handler, trimmed down a bit:

```rust
async fn ingest(req: Request<Body>, state: Arc<State>) -> Result<Response<Body>, Error> {
    let started = Instant::now();
    let body = hyper::body::to_bytes(req.into_body()).await?;
    if body.len() > state.config.max_body {
        return Ok(status(StatusCode::PAYLOAD_TOO_LARGE));
    }
    let events: Vec<Event> = serde_json::from_slice(&body)?;
    for chunk in events.chunks(500) {
        state.queue.send_batch(chunk).await?;
    }
    metrics::histogram!("ingest_seconds", started.elapsed().as_secs_f64());
    Ok(status(StatusCode::ACCEPTED))
}
```

The queue client is configured with a pool of 16 connections and a 5 s connect timeout; the retry policy is exponential with a base of 100 ms and at most 4 attempts. We run 12 pods behind the load balancer, each with 2 vCPUs and 4 GiB of memory. CPU sits around 35% and memory is flat, so I don't think we're resource bound. The only other change in that release was bumping the TLS library from 0.21 to 0.23 and turning on HTTP/2 for the upstream connection.

I also noticed that the timeouts cluster: we see bursts of 40 to 60 failures within a few seconds, then nothing for ten minutes or so. The logs around the bursts look like this (timestamps in UTC):

    2024-01-16T09:41:07Z WARN queue: send_batch took 29.8s (batch=500, attempt=4)
    2024-01-16T09:41:07Z WARN queue: connection reset by peer, reconnecting
    2024-01-16T09:41:08Z INFO pool: 16/16 connections busy, 212 waiters

What's strange is that the waiters number keeps growing during a burst even though the batches are small. My guess is that one slow connection blocks the others, but I thought HTTP/2 multiplexing was supposed to avoid exactly that. Is it possible that the max concurrent streams setting on the server side (it's 100 by default, I believe) interacts badly with our pool size? Or that the new TLS version renegotiates something under load?

Some numbers from yesterday's load test, in case they help: at 1,200 requests per second the error rate was 0.4%; at 2,000 it rose to 3.1%; at 2,500 the service fell over completely and took about 90 seconds to recover after the load stopped. With HTTP/2 disabled the same test ran clean up to 2,800 requests per second. The event payloads average 1.7 KB, with a long tail up to 64 KB for crash reports.

I'd like to keep HTTP/2 if I can, because it cut our connection count by a factor of eight. What settings should I look at first, and how would you instrument this to confirm the theory before changing anything? Also, is there a way to make the batch send fail fast instead of waiting the full 30 seconds when a connection is wedged? A sketch in Rust would be great, but pseudo-code is fine too. Thanks a lot for your help, and sorry for the long message!"#;

fn clean() -> String {
    let mut text = PROSE.to_owned();
    while text.len() < 4000 {
        text.push_str("\n\nP.S. One more data point: the same thing happens on the staging cluster, which runs release 2.4.0 with 3 pods.");
    }
    text
}

/// The clean text with six findings: two emails (one repeated), a phone, a card, an AWS key
/// and a GitHub token.
fn dirty() -> String {
    clean()
        .replacen("Hi! ", "Hi! I'm ops@example.com, ", 1)
        .replacen("Could you", "Call +1 (415) 555-2671 or could you", 1)
        .replacen(
            "The queue client",
            "Billing card 4111 1111 1111 1111. The queue client",
            1,
        )
        .replacen(
            "We run 12 pods",
            "Key AKIAIOSFODNN7EXAMPLE. We run 12 pods",
            1,
        )
        .replacen(
            "Some numbers",
            "Token ghp_A1b2C3d4E5A1b2C3d4E5A1b2C3d4E5A1b2C3, cc ops@example.com. Some numbers",
            1,
        )
}

fn scan_all(checks: &[Check], text: &str, out: &mut Vec<Finding>) {
    for c in checks {
        c.scan(text, out);
    }
}

fn checks(c: &mut Criterion) {
    let clean = clean();
    let dirty = dirty();
    let pii_secrets = [Check::pii(PiiSet::ALL), Check::secrets()];
    let words: Vec<String> = [
        "confidential",
        "project falcon",
        "acme corp",
        "internal only",
        "do not share",
        "codename",
        "blacklist",
        "payroll",
        "merger",
        "layoffs",
    ]
    .iter()
    .map(|w| w.to_string())
    .collect();
    let deny = Check::deny(&words, &[]).unwrap();
    let injection = Check::injection();
    assert_eq!(
        count(&pii_secrets, &clean),
        0,
        "the clean text has findings"
    );
    assert_eq!(count(&pii_secrets, &dirty), 6);

    let mut out = Vec::with_capacity(16);
    let mut g = c.benchmark_group("guard");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_function("clean_pii_and_secrets", |b| {
        b.iter(|| {
            out.clear();
            scan_all(&pii_secrets, black_box(&clean), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("clean_pii", |b| {
        b.iter(|| {
            out.clear();
            pii_secrets[0].scan(black_box(&clean), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("clean_secrets", |b| {
        b.iter(|| {
            out.clear();
            pii_secrets[1].scan(black_box(&clean), &mut out);
            black_box(out.len())
        })
    });
    let mut redacted = String::with_capacity(dirty.len());
    g.bench_function("six_findings_scan_and_redact", |b| {
        b.iter(|| {
            out.clear();
            redacted.clear();
            scan_all(&pii_secrets, black_box(&dirty), &mut out);
            let mut names = Placeholders::default();
            redact(&dirty, &mut out, &mut names, &mut redacted);
            black_box(redacted.len())
        })
    });
    g.bench_function("injection", |b| {
        b.iter(|| {
            out.clear();
            injection.scan(black_box(&clean), &mut out);
            black_box(out.len())
        })
    });
    g.bench_function("deny_ten_words", |b| {
        b.iter(|| {
            out.clear();
            deny.scan(black_box(&clean), &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

fn count(checks: &[Check], text: &str) -> usize {
    let mut out = Vec::new();
    scan_all(checks, text, &mut out);
    out.len()
}

/// The clean text in 16-byte deltas through a hold-back with the PII check: each delta that
/// can release rescans the held tail, so this is the price of streaming guardrails; then the
/// same with releases batched to 64 bytes or more.
fn stream(c: &mut Criterion) {
    let clean = clean();
    let pii = Check::pii(PiiSet::ALL);
    let mut deltas = Vec::new();
    let mut from = 0;
    while from < clean.len() {
        let mut to = (from + 16).min(clean.len());
        while !clean.is_char_boundary(to) {
            to += 1;
        }
        deltas.push(&clean[from..to]);
        from = to;
    }
    let mut found = Vec::with_capacity(16);
    let mut g = c.benchmark_group("guard_stream");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    for (name, batch) in [
        ("pii_16_byte_deltas", 0),
        ("pii_16_byte_deltas_min_release_64", 64),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut hold = Holdback::new(pii.max_span()).min_release(batch);
                let mut n = 0;
                for d in &deltas {
                    n += hold.push(d, &mut found, |t, o| pii.scan(t, o)).len();
                }
                n += hold.finish(&mut found, |t, o| pii.scan(t, o)).len();
                black_box(n)
            })
        });
    }
    g.finish();
}

/// The request stage's own work on a ~4 KB chat body (JSON): parse it, walk its text strings
/// (system prompt, user turns, a tool call's arguments and its result), scan each with PII
/// and secrets, and write back what a redaction changed; clean, then with the six findings.
fn request(c: &mut Criterion) {
    use shardgate::pipeline::decode::Decoder;
    use shardgate::pipeline::guardrail::text::{self, Edit};
    let body = |prose: &str| {
        let third = prose.len() / 3;
        let mut cut = third;
        while !prose.is_char_boundary(cut) {
            cut += 1;
        }
        let (a, b) = prose.split_at(cut);
        let v = serde_json::json!({
            "model": "gpt",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant for infrastructure questions."},
                {"role": "user", "content": a},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "search", "arguments": "{\"q\":\"http2 pool waiters\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "3 results"},
                {"role": "user", "content": b},
            ],
            "max_tokens": 500
        });
        serde_json::to_vec(&v).unwrap()
    };
    let (clean, dirty) = (body(&clean()), body(&dirty()));
    let checks = [Check::pii(PiiSet::ALL), Check::secrets()];
    let mut decoder = Decoder::default();
    let mut g = c.benchmark_group("guard_request");
    g.throughput(Throughput::Bytes(clean.len() as u64));
    for (name, json) in [
        ("clean_body_pii_and_secrets", &clean),
        ("six_findings_body_redacted", &dirty),
    ] {
        let mut found = Vec::with_capacity(16);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut edits: Vec<Edit> = Vec::new();
                let mut names = Placeholders::default();
                decoder.parse_at(black_box(json), |root, base| {
                    text::walk(root, base, &mut |s, at| {
                        found.clear();
                        scan_all(&checks, s, &mut found);
                        if !found.is_empty() {
                            let mut out = String::new();
                            redact(s, &mut found, &mut names, &mut out);
                            let span = text::span(json, at).unwrap();
                            edits.push(Edit { span, text: out });
                        }
                    })
                });
                let n = if edits.is_empty() {
                    0
                } else {
                    text::apply(json, &mut edits).len()
                };
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, checks, stream, request);
criterion_main!(benches);
