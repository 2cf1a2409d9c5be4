//! Conformance: every client protocol in front of every upstream protocol, the same cases for
//! each pair, through the real binary and the mock upstream (which speaks each protocol, checks
//! Bedrock's signatures, and reads its directives from the provider's base path).
//!
//! Per pair: a text answer whole and streamed (with the cached share of the prompt reported by
//! the mock), two parallel tool calls whole and streamed, an upstream 429 in the client's own
//! error shape, and a rich request (system prompt, image, an earlier tool call and its result,
//! a second user turn, tool choice, sampling settings, a stop sequence, an end user) whose
//! `x-shardgate-dropped` header names what the pair cannot carry.
//!
//! The README's matrix is generated from this run: the test fails when README.md differs, and
//! `SHARDGATE_BLESS=1 cargo test --test conformance` writes the new one.

#[path = "conformance/client.rs"]
mod client;
mod common;

use client::{Answer, Ask, INGRESSES, Ingress};
use common::http;
use common::{ADMIN, Driver, Gateway};
use serde_json::Value;

const TEXT: &str = "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ";
const CACHED: u64 = 5;
pub const AWS_KEY_ID: &str = "AKIDCONFORMANCE";
pub const AWS_SECRET: &str = "conformance/secret/key";

/// An upstream protocol, as a provider block on the mock (`{base}` is the mock with its
/// directives) and the model its targets name.
struct Upstream {
    name: &'static str,
    provider: &'static str,
    model: &'static str,
    /// Whether the protocol reports the cached share of the prompt.
    caches: bool,
}

const UPSTREAMS: &[Upstream] = &[
    Upstream {
        name: "OpenAI Chat",
        provider: "protocol: openai\n    base_url: {base}/v1\n    api_key: { env: UPSTREAM_KEY }",
        model: "gpt-up",
        caches: true,
    },
    Upstream {
        name: "OpenAI Responses",
        provider: "protocol: openai-responses\n    base_url: {base}/v1\n    api_key: { env: UPSTREAM_KEY }",
        model: "gpt-up",
        caches: true,
    },
    Upstream {
        name: "Anthropic",
        provider: "protocol: anthropic\n    base_url: {base}\n    api_key: { env: UPSTREAM_KEY }",
        model: "claude-up",
        caches: true,
    },
    Upstream {
        name: "Gemini",
        provider: "protocol: gemini\n    base_url: {base}\n    api_key: { env: UPSTREAM_KEY }",
        model: "gemini-up",
        caches: true,
    },
    Upstream {
        name: "Vertex AI (Gemini)",
        provider: "protocol: vertex\n    base_url: {base}\n    project: test-project\n    region: us-east5\n    access_token: { env: UPSTREAM_KEY }",
        model: "gemini-up",
        caches: true,
    },
    Upstream {
        name: "Vertex AI (Claude)",
        provider: "protocol: vertex\n    base_url: {base}\n    project: test-project\n    region: us-east5\n    access_token: { env: UPSTREAM_KEY }",
        model: "claude-up",
        caches: true,
    },
    Upstream {
        name: "Bedrock",
        provider: "protocol: bedrock\n    base_url: {base}\n    region: us-east-1\n    access_key_id: { env: AWS_KEY_ID }\n    secret_access_key: { env: AWS_SECRET }",
        model: "anthropic.claude-up-v1:0",
        caches: true,
    },
    Upstream {
        name: "Cohere",
        provider: "protocol: cohere\n    base_url: {base}\n    api_key: { env: UPSTREAM_KEY }",
        model: "command-up",
        caches: false,
    },
];

/// The directives of each provider variant: plain text (with a cached prompt share), two tool
/// calls, always rate-limited.
const VARIANTS: [(&str, &str); 3] = [
    ("text", "cached_tokens=5"),
    ("tools", "tools=2"),
    ("busy", "status=429"),
];

fn config(mock: &str) -> String {
    let mut providers = String::new();
    let mut models = String::new();
    let mut names = Vec::new();
    for (u, up) in UPSTREAMS.iter().enumerate() {
        for (variant, directives) in VARIANTS {
            let base = format!("{mock}/mock/{directives}");
            let name = format!("u{u}-{variant}");
            providers.push_str(&format!(
                "  {name}:\n    {}\n",
                up.provider.replace("{base}", &base)
            ));
            models.push_str(&format!(
                "  {name}:\n    targets:\n      - {{ provider: {name}, model: {} }}\n    retry: {{ attempts: 1 }}\n",
                up.model
            ));
            names.push(name);
        }
    }
    format!(
        "server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  shards: 1\n  pin: false\n\
         providers:\n{providers}models:\n{models}keys:\n  - name: admin\n    key: {{ env: ADMIN_KEY }}\n"
    )
}

fn post(gw: &Gateway, path: &str, body: &Value) -> http::Response {
    let auth = format!("Bearer {ADMIN}");
    let body = serde_json::to_vec(body).unwrap();
    http::request(
        gw.api,
        "POST",
        path,
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        &body,
    )
}

fn events(r: &http::Response) -> Vec<Value> {
    http::sse_data(&r.body)
        .into_iter()
        .filter(|d| d != "[DONE]")
        .map(|d| serde_json::from_str(&d).unwrap_or(Value::String(d)))
        .collect()
}

/// The outcome of one pair.
#[derive(Default)]
struct Row {
    failures: Vec<String>,
    cached: bool,
    dropped: String,
}

impl Row {
    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(format!("{what}: {}", detail()));
        }
    }
}

fn run_pair(gw: &Gateway, ingress: Ingress, u: usize, up: &Upstream) -> Row {
    let mut row = Row::default();
    let alias = |variant: &str| format!("u{u}-{variant}");
    for stream in [false, true] {
        let kind = if stream { "stream" } else { "whole" };
        // Text, with the cached share of the prompt.
        let (path, body) = ingress.request(&alias("text"), Ask::Text, stream);
        let r = post(gw, &path, &body);
        row.check(&format!("text {kind}: status"), r.status == 200, || {
            r.text()
        });
        if r.status == 200 {
            let a = if stream {
                ingress.stream(&events(&r))
            } else {
                ingress.whole(&r.json())
            };
            row.check(
                &format!("text {kind}"),
                a.text == TEXT && a.finish == "end",
                || format!("{a:?}"),
            );
            row.check(
                &format!("text {kind}: usage"),
                a.input > 0 && a.output > 0,
                || format!("{a:?}"),
            );
            if up.caches {
                row.check(
                    &format!("text {kind}: cached tokens"),
                    a.cached == CACHED,
                    || format!("{a:?}"),
                );
            }
            row.cached = up.caches;
        }
        // Two parallel tool calls.
        let (path, body) = ingress.request(&alias("tools"), Ask::Tools, stream);
        let r = post(gw, &path, &body);
        row.check(&format!("tools {kind}: status"), r.status == 200, || {
            r.text()
        });
        if r.status == 200 {
            let a: Answer = if stream {
                ingress.stream(&events(&r))
            } else {
                ingress.whole(&r.json())
            };
            let good = a.calls.len() == 2
                && a.calls
                    .iter()
                    .all(|(n, args)| n == "get_weather" && args.is_object())
                && a.finish == "tools";
            row.check(&format!("tools {kind}"), good, || format!("{a:?}"));
        }
    }
    // An upstream 429, in the client's shape.
    let (path, body) = ingress.request(&alias("busy"), Ask::Text, false);
    let r = post(gw, &path, &body);
    let shaped = serde_json::from_slice(&r.body).map(|v| ingress.is_rate_limit(r.status, &v));
    row.check("429", shaped.unwrap_or(false), || {
        format!("{} {}", r.status, r.text())
    });
    // Everything at once: served, and what is dropped is named.
    let (path, body) = ingress.request(&alias("text"), Ask::Rich, false);
    let r = post(gw, &path, &body);
    row.check("rich request", r.status == 200, || r.text());
    if r.status == 200 {
        let a = ingress.whole(&r.json());
        row.check("rich request: answer", a.text == TEXT, || format!("{a:?}"));
    }
    row.dropped = r.header("x-shardgate-dropped").unwrap_or("").to_owned();
    row
}

const BEGIN: &str = "<!-- conformance matrix: generated by tests/conformance.rs -->";
const END: &str = "<!-- end of conformance matrix -->";

fn matrix(rows: &[(Ingress, &Upstream, Row)]) -> String {
    let mut out = String::from(
        "| client → upstream | text | stream | tool calls | tool-call stream | cached tokens | errors | what the rich request drops |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (ingress, up, row) in rows {
        let mark = |prefix: &str| {
            if row.failures.iter().any(|f| f.starts_with(prefix)) {
                "✗"
            } else {
                "✓"
            }
        };
        let cached = if !row.cached {
            "— (not reported)"
        } else {
            mark("text whole: cached")
        };
        let dropped = if row.dropped.is_empty() {
            "nothing".to_owned()
        } else {
            format!("`{}`", row.dropped.replace(", ", "`, `"))
        };
        out.push_str(&format!(
            "| {} → {} | {} | {} | {} | {} | {} | {} | {} |\n",
            ingress.name(),
            up.name,
            mark("text whole"),
            mark("text stream"),
            mark("tools whole"),
            mark("tools stream"),
            cached,
            mark("429"),
            dropped,
        ));
    }
    out
}

#[test]
fn every_client_in_front_of_every_upstream() {
    let mock = loadtest::mock::MockServer::start(loadtest::mock::MockConfig {
        aws: Some(loadtest::mock::AwsKeys {
            access_key_id: AWS_KEY_ID.into(),
            secret_access_key: AWS_SECRET.into(),
            session_token: None,
        }),
        ..Default::default()
    })
    .expect("mock upstream starts");
    let base = mock.base_url();
    let env = [("AWS_KEY_ID", AWS_KEY_ID), ("AWS_SECRET", AWS_SECRET)];
    let gw = Gateway::try_start(&config(&base), Driver::Uring, &env)
        .unwrap_or_else(|e| panic!("gateway did not start: {e}"));
    let mut rows = Vec::new();
    for ingress in INGRESSES {
        for (u, up) in UPSTREAMS.iter().enumerate() {
            let row = run_pair(&gw, ingress, u, up);
            rows.push((ingress, up, row));
        }
    }
    let table = matrix(&rows);
    let failures: Vec<String> = rows
        .iter()
        .flat_map(|(i, u, r)| {
            r.failures
                .iter()
                .map(move |f| format!("{} → {}: {f}", i.name(), u.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}\n\n{table}",
        failures.len(),
        failures.join("\n")
    );
    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).unwrap();
    let (Some(a), Some(b)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md has no conformance matrix markers");
    };
    let current = &readme[a + BEGIN.len()..b];
    let fresh = format!("\n{table}");
    if current != fresh {
        if std::env::var_os("SHARDGATE_BLESS").is_some() {
            let updated = format!("{}{fresh}{}", &readme[..a + BEGIN.len()], &readme[b..]);
            std::fs::write(&readme_path, updated).unwrap();
        } else {
            panic!(
                "README.md's conformance matrix is out of date; run \
                 `SHARDGATE_BLESS=1 cargo test --test conformance`. This run's:\n{table}"
            );
        }
    }
}

/// Bedrock's runtime endpoint lists no models: health checks left at the default
/// `probe: models` send it the smallest chat instead (signed like any request), and the target
/// stays healthy.
#[test]
fn bedrock_targets_are_probed_with_a_chat() {
    let mock = loadtest::mock::MockServer::start(loadtest::mock::MockConfig {
        aws: Some(loadtest::mock::AwsKeys {
            access_key_id: AWS_KEY_ID.into(),
            secret_access_key: AWS_SECRET.into(),
            session_token: None,
        }),
        ..Default::default()
    })
    .expect("mock upstream starts");
    let cfg = format!(
        "server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  shards: 1\n  pin: false\n\
         providers:\n  aws:\n    {}\n\
         models:\n  b:\n    health: {{ interval_ms: 100, timeout_ms: 1000, failures: 1 }}\n    \
         targets:\n      - {{ provider: aws, model: anthropic.claude-up-v1:0 }}\n",
        UPSTREAMS[6].provider.replace("{base}", &mock.base_url())
    );
    let env = [("AWS_KEY_ID", AWS_KEY_ID), ("AWS_SECRET", AWS_SECRET)];
    let gw = Gateway::try_start(&cfg, Driver::Uring, &env)
        .unwrap_or_else(|e| panic!("gateway did not start: {e}"));
    gw.wait_metric(
        "shardgate_health_probes_total{model=\"b\",target=\"aws/anthropic.claude-up-v1:0\",result=\"ok\"} 2",
    );
}
