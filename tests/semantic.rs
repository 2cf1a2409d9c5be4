//! The semantic cache, black-box: the real binary against the mock, whose `*words*` embedding
//! model embeds text as a bag of words (a question reworded in case and punctuation is cosine
//! 1.0 from the original; one word in six changed, about 0.83). Hits above the threshold
//! only, never across tenants or earlier context; a request may raise the threshold but not
//! lower it; an embedding that fails leaves the request uncached, not refused.

mod common;

use common::http::{self, Response, sse_data};
use common::{ADMIN, Driver, Gateway, MockConfig, MockServer, TEAM_A};

fn config(upstream: &str) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  pin: false
  master_key: {{ env: MASTER_KEY }}
  access_log: stdout
providers:
  up:
    protocol: openai
    base_url: {upstream}/v1
    api_key: {{ env: UPSTREAM_KEY }}
  gone:
    protocol: openai
    base_url: http://127.0.0.1:9/v1
    api_key: {{ env: UPSTREAM_KEY }}
models:
  sem:
    targets: [ {{ provider: up, model: upstream-mini }} ]
    cache: {{ ttl_s: 60, semantic: {{ embeddings: embed, dimensions: 256 }} }}
  loose:
    targets: [ {{ provider: up, model: upstream-mini }} ]
    cache: {{ ttl_s: 60, semantic: {{ embeddings: embed, threshold: 0.8, dimensions: 256 }} }}
  blind:
    targets: [ {{ provider: up, model: upstream-mini }} ]
    cache: {{ ttl_s: 60, semantic: {{ embeddings: broken, timeout_ms: 300 }} }}
  embed:
    targets: [ {{ provider: up, model: text-embedding-words }} ]
  broken:
    targets: [ {{ provider: gone, model: text-embedding-words }} ]
    retry: {{ attempts: 1 }}
keys:
  - name: team-a
    key: {{ env: TEAM_A_KEY }}
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#
    )
}

fn chat(gw: &Gateway, key: &str, body: &str) -> Response {
    let auth = format!("Bearer {key}");
    http::request(
        gw.api,
        "POST",
        "/v1/chat/completions",
        &[("authorization", &auth)],
        body.as_bytes(),
    )
}

fn ask(alias: &str, question: &str, extra: &str) -> String {
    format!(r#"{{"model":"{alias}","messages":[{{"role":"user","content":"{question}"}}]{extra}}}"#)
}

fn cache(r: &Response) -> &str {
    r.header("x-shardgate-cache").unwrap_or("(none)")
}

fn semantic_hits(driver: Driver) {
    let mock = MockServer::start(MockConfig::default()).unwrap();
    let gw = Gateway::start(&config(&mock.base_url()), driver);
    let chats = || mock.stats().api("openai_chat");

    let first = chat(
        &gw,
        TEAM_A,
        &ask("sem", "What is the capital of France?", ""),
    );
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(cache(&first), "MISS");
    assert_eq!(chats(), 1);
    assert_eq!(
        mock.stats().api("openai_embeddings"),
        1,
        "the question was embedded"
    );

    // Reworded (another exact key), the same question: its answer, no upstream chat.
    let again = chat(
        &gw,
        TEAM_A,
        &ask("sem", "what is the capital of france", ""),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(cache(&again), "SEMANTIC_HIT");
    assert_eq!(chats(), 1);
    assert_eq!(
        again.json()["choices"][0]["message"]["content"],
        first.json()["choices"][0]["message"]["content"]
    );
    assert_eq!(again.json()["usage"]["completion_tokens"], 0);
    assert_eq!(again.header("x-shardgate-cost"), Some("0.00000000"));
    // Streamed, replayed as a stream.
    let r = chat(
        &gw,
        TEAM_A,
        &ask("sem", "What is the capital of France!", r#","stream":true"#),
    );
    assert_eq!(cache(&r), "SEMANTIC_HIT");
    assert_eq!(sse_data(&r.body).last().map(String::as_str), Some("[DONE]"));

    // One word in six changed is below 0.95: a miss. A request may not lower the threshold.
    let spain = ask("sem", "What is the capital of Spain?", "");
    assert_eq!(cache(&chat(&gw, TEAM_A, &spain)), "MISS");
    let lowered = ask(
        "sem",
        "What is the capital of Italy?",
        r#","cache":{"threshold":0.5}"#,
    );
    assert_eq!(cache(&chat(&gw, TEAM_A, &lowered)), "MISS");
    assert_eq!(chats(), 3);

    // Another tenant, or another earlier context, never matches.
    assert_eq!(
        cache(&chat(
            &gw,
            ADMIN,
            &ask("sem", "what is the capital of france?", "")
        )),
        "MISS"
    );
    let framed = r#"{"model":"sem","messages":[{"role":"system","content":"Answer in French."},{"role":"user","content":"what is the capital of france?"}]}"#;
    assert_eq!(cache(&chat(&gw, TEAM_A, framed)), "MISS");
    let earlier = r#"{"model":"sem","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"what is the capital of france?"}]}"#;
    assert_eq!(cache(&chat(&gw, TEAM_A, earlier)), "MISS");
    // Nor do other sampling settings (they are part of the context).
    let warmer = ask(
        "sem",
        "what is the capital of france?",
        r#","temperature":1.5"#,
    );
    assert_eq!(cache(&chat(&gw, TEAM_A, &warmer)), "MISS");

    // A lower threshold on the alias lets the one-word change match; a request may raise it.
    assert_eq!(
        cache(&chat(
            &gw,
            TEAM_A,
            &ask("loose", "What is the capital of France?", "")
        )),
        "MISS"
    );
    assert_eq!(
        cache(&chat(
            &gw,
            TEAM_A,
            &ask("loose", "What is the capital of Spain?", "")
        )),
        "SEMANTIC_HIT"
    );
    let raised = ask(
        "loose",
        "What is the capital of Italy?",
        r#","cache":{"threshold":0.99}"#,
    );
    assert_eq!(cache(&chat(&gw, TEAM_A, &raised)), "MISS");

    // An embedding that cannot be had: the request goes on, uncached semantically, and the
    // exact cache still works.
    let blind = ask("blind", "What is the capital of France?", "");
    let r = chat(&gw, TEAM_A, &blind);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(cache(&r), "MISS");
    assert_eq!(cache(&chat(&gw, TEAM_A, &blind)), "HIT");

    let metrics =
        gw.wait_metric(r#"shardgate_cache_requests_total{model="sem",result="semantic_hit"} 2"#);
    assert!(
        metrics
            .contains(r#"shardgate_cache_requests_total{model="loose",result="semantic_hit"} 1"#),
        "{metrics}"
    );
    let log = gw.stdout.lock().unwrap().clone();
    assert!(log.contains(r#""cache":"semantic_hit""#), "{log}");
}

both_drivers!(semantic_hits);
