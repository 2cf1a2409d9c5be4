//! The response cache, black-box: the real binary against the mock upstream, counting what
//! reached the upstream. Hits and misses across tenants, one stored answer serving both the
//! whole and the streamed form (OpenAI and Anthropic clients, tool calls included), the
//! per-request controls, only complete answers stored, purges, metrics and the access log.

mod common;

use common::http::{self, Response, sse_data};
use common::{ADMIN, Driver, Gateway, MockConfig, MockServer, TEAM_A};
use std::time::Duration;

fn config(upstream: &str, cache: &str) -> String {
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
models:
  gpt:
    targets:
      - {{ provider: up, model: upstream-mini }}
    retry: {{ attempts: 1 }}
    cache: {cache}
  plain:
    targets:
      - {{ provider: up, model: upstream-mini }}
keys:
  - name: team-a
    key: {{ env: TEAM_A_KEY }}
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#
    )
}

fn start(cache: &str, driver: Driver) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockConfig::default()).unwrap();
    let gw = Gateway::start(&config(&mock.base_url(), cache), driver);
    (mock, gw)
}

fn post(gw: &Gateway, path: &str, key: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let auth = format!("Bearer {key}");
    let mut all: Vec<(&str, &str)> = vec![("authorization", &auth), ("x-api-key", key)];
    all.extend_from_slice(headers);
    http::request(gw.api, "POST", path, &all, body.as_bytes())
}

fn chat(gw: &Gateway, key: &str, body: &str) -> Response {
    post(gw, "/v1/chat/completions", key, &[], body)
}

fn cache_header(r: &Response) -> &str {
    r.header("x-shardgate-cache").unwrap_or("(none)")
}

const ASK: &str = r#"{"model":"gpt","messages":[{"role":"user","content":"What is a cache?"}],"max_tokens":50,"temperature":0.2}"#;

fn hits_and_misses_across_tenants(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60, scope: key }", driver);
    let first = chat(&gw, TEAM_A, ASK);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(cache_header(&first), "MISS");
    assert_eq!(mock.stats().requests, 1);

    let again = chat(&gw, TEAM_A, ASK);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(cache_header(&again), "HIT");
    assert_eq!(mock.stats().requests, 1, "a hit never reaches the upstream");
    let (a, b) = (first.json(), again.json());
    for field in ["role", "content"] {
        assert_eq!(
            a["choices"][0]["message"][field],
            b["choices"][0]["message"][field]
        );
    }
    assert_eq!(
        a["choices"][0]["finish_reason"],
        b["choices"][0]["finish_reason"]
    );
    assert_ne!(a["id"], b["id"], "a hit gets a fresh id");
    assert_eq!(b["usage"]["prompt_tokens"], 0);
    assert_eq!(b["usage"]["completion_tokens"], 0);
    assert_eq!(again.header("x-shardgate-cost"), Some("0.00000000"));

    // The same question written another way (members reordered, defaults spelled out,
    // streamed-off said aloud) is the same key.
    let same = r#"{"temperature":0.2,"stream":false,"top_p":1,"max_tokens":50,"messages":[{"content":"What is a cache?","role":"user"}],"model":"gpt"}"#;
    assert_eq!(cache_header(&chat(&gw, TEAM_A, same)), "HIT");

    // Another key is another tenant: never served team-a's answer.
    let other = chat(&gw, ADMIN, ASK);
    assert_eq!(cache_header(&other), "MISS");
    assert_eq!(mock.stats().requests, 2);
    assert_eq!(cache_header(&chat(&gw, ADMIN, ASK)), "HIT");

    // Anything that changes the answer is another key.
    for changed in [
        ASK.replace("0.2", "0.3"),
        ASK.replace("\"max_tokens\":50", "\"max_tokens\":51"),
        ASK.replace("a cache", "a Cache"),
        ASK.replace(
            "\"temperature\":0.2",
            r#""temperature":0.2,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#,
        ),
        ASK.replace("\"temperature\":0.2", r#""temperature":0.2,"seed":7"#),
        ASK.replace("\"temperature\":0.2", r#""temperature":0.2,"stop":["."]"#),
    ] {
        let before = mock.stats().requests;
        let r = chat(&gw, TEAM_A, &changed);
        assert_eq!(cache_header(&r), "MISS", "{changed}");
        assert_eq!(mock.stats().requests, before + 1);
    }

    // An alias without a cache always goes upstream, and says so.
    let plain = ASK.replace("\"gpt\"", "\"plain\"");
    for _ in 0..2 {
        assert_eq!(cache_header(&chat(&gw, TEAM_A, &plain)), "BYPASS");
    }
    let metrics = gw.wait_metric(r#"shardgate_cache_requests_total{model="gpt",result="hit"} 3"#);
    assert!(metrics.contains(r#"shardgate_cache_requests_total{model="gpt",result="miss"} 8"#));
    assert!(metrics.contains("shardgate_cache_entries 8"), "{metrics}");
    let log = gw.stdout.lock().unwrap().clone();
    assert!(log.contains(r#""cache":"hit""#), "{log}");
}

/// One stored answer serves both forms, each as a proper stream or body in the client's
/// protocol, with its tool calls.
fn one_answer_serves_both_forms(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60 }", driver);
    let ask =
        r#"{"model":"gpt","messages":[{"role":"user","content":"weather?"}],"mock":{"tools":2}}"#;
    let whole = chat(&gw, TEAM_A, ask);
    assert_eq!(cache_header(&whole), "MISS");
    let calls = whole.json()["choices"][0]["message"]["tool_calls"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(2), "{}", whole.text());

    let streamed = ask.replace(
        "\"mock\"",
        r#""stream":true,"stream_options":{"include_usage":true},"mock""#,
    );
    let r = chat(&gw, TEAM_A, &streamed);
    assert_eq!(cache_header(&r), "HIT", "{}", r.text());
    assert_eq!(mock.stats().requests, 1);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = sse_data(&r.body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| common::json(e.as_bytes()))
        .collect();
    assert!(chunks.len() > 4, "replayed in several chunks: {events:?}");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(chunks.iter().all(|c| c["id"] == id), "one id throughout");
    assert_ne!(id, whole.json()["id"].as_str().unwrap());
    // The tool calls, reassembled from their deltas, are the stored ones.
    let mut args = [String::new(), String::new()];
    let mut names = [String::new(), String::new()];
    for c in &chunks {
        for tc in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(n) = tc["function"]["name"].as_str() {
                names[i].push_str(n);
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                args[i].push_str(a);
            }
        }
    }
    for i in 0..2 {
        assert_eq!(names[i], calls[i]["function"]["name"].as_str().unwrap());
        assert_eq!(args[i], calls[i]["function"]["arguments"].as_str().unwrap());
    }
    let finish: Vec<_> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let usage = chunks.last().unwrap();
    assert_eq!(usage["usage"]["total_tokens"], 0, "{usage}");

    // And the other way: a stream stored, served whole; then to an Anthropic client as its
    // own event sequence (its own key: another protocol's body).
    let text =
        r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"tell me a story"}]}"#;
    let first = chat(&gw, TEAM_A, text);
    assert_eq!(cache_header(&first), "MISS");
    let told: String = sse_data(&first.body)
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| {
            common::json(e.as_bytes())["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    let whole = chat(
        &gw,
        TEAM_A,
        &text.replace("\"stream\":true", "\"stream\":false"),
    );
    assert_eq!(cache_header(&whole), "HIT", "{}", whole.text());
    assert_eq!(
        whole.json()["choices"][0]["message"]["content"],
        told.as_str()
    );

    let anthropic = r#"{"model":"gpt","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"tell me a story"}]}"#;
    let miss = post(
        &gw,
        "/v1/messages",
        TEAM_A,
        &[("anthropic-version", "2023-06-01")],
        anthropic,
    );
    assert_eq!(cache_header(&miss), "MISS", "{}", miss.text());
    let hit = post(
        &gw,
        "/v1/messages",
        TEAM_A,
        &[("anthropic-version", "2023-06-01")],
        anthropic,
    );
    assert_eq!(cache_header(&hit), "HIT");
    let types: Vec<String> = hit
        .text()
        .split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("event: ").map(str::to_owned))
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("message_start"));
    assert_eq!(types.last().map(String::as_str), Some("message_stop"));
    assert!(
        types.iter().filter(|t| *t == "content_block_delta").count() > 1,
        "{types:?}"
    );
    let text_of = |r: &Response| -> String {
        sse_data(&r.body)
            .iter()
            .filter_map(|e| {
                let v = common::json(e.as_bytes());
                v["delta"]["text"].as_str().map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(text_of(&hit), text_of(&miss));
    assert_eq!(mock.stats().requests, 3);
}

fn controls_are_honoured(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60 }", driver);
    let n = || mock.stats().requests;
    let ask = |body: &str, headers: &[(&str, &str)]| {
        post(&gw, "/v1/chat/completions", TEAM_A, headers, body)
    };
    // no-store: answered, not kept.
    assert_eq!(
        cache_header(&ask(ASK, &[("cache-control", "no-store")])),
        "MISS"
    );
    assert_eq!(cache_header(&ask(ASK, &[])), "MISS");
    assert_eq!(n(), 2);
    // no-cache: not read (goes upstream), but kept.
    assert_eq!(
        cache_header(&ask(ASK, &[("cache-control", "no-cache")])),
        "BYPASS"
    );
    assert_eq!(n(), 3);
    assert_eq!(cache_header(&ask(ASK, &[])), "HIT");
    // The body's own controls (LiteLLM's), which never reach the upstream.
    let with = |cache: &str| {
        ASK.replace(
            "\"max_tokens\"",
            &format!("\"cache\":{cache},\"max_tokens\""),
        )
    };
    assert_eq!(
        cache_header(&ask(&with(r#"{"no-cache":true}"#), &[])),
        "BYPASS"
    );
    let sent = mock.stats().last_request.unwrap();
    assert!(
        !String::from_utf8_lossy(&sent.body).contains("no-cache"),
        "the cache member went upstream"
    );
    assert_eq!(n(), 4);
    assert_eq!(
        cache_header(&ask(&with(r#"{"ttl":30}"#), &[])),
        "HIT",
        "ttl does not change the key"
    );
    // A namespace is a key of its own.
    assert_eq!(
        cache_header(&ask(&with(r#"{"namespace":"eval-1"}"#), &[])),
        "MISS"
    );
    assert_eq!(
        cache_header(&ask(&with(r#"{"namespace":"eval-1"}"#), &[])),
        "HIT"
    );
    assert_eq!(
        cache_header(&ask(&with(r#"{"namespace":"eval-2"}"#), &[])),
        "MISS"
    );
    // max-age: an answer older than the client accepts is not served.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        cache_header(&ask(ASK, &[("cache-control", "max-age=0")])),
        "MISS"
    );
    assert_eq!(
        cache_header(&ask(ASK, &[("cache-control", "max-age=60")])),
        "HIT"
    );
    // A client ttl of one second: gone after it.
    let short = ASK.replace("cache?", "cache??");
    let short = short.replace("\"max_tokens\"", "\"cache\":{\"ttl\":1},\"max_tokens\"");
    assert_eq!(cache_header(&ask(&short, &[])), "MISS");
    assert_eq!(cache_header(&ask(&short, &[])), "HIT");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(cache_header(&ask(&short, &[])), "MISS");
    // A malformed cache member is the client's error.
    let bad = ask(&with(r#"{"ttl":"soon"}"#), &[]);
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("cache.ttl"));
}

fn only_complete_answers_are_stored(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60 }", driver);
    let n = || mock.stats().requests;
    let with = |mock: &str, stream: bool| {
        format!(
            r#"{{"model":"gpt","stream":{stream},"messages":[{{"role":"user","content":"q"}}],"mock":{mock}}}"#
        )
    };
    for (directive, stream) in [
        (r#"{"status":500}"#, false),
        (r#"{"status":400}"#, false),
        (r#"{"drop_after":2,"chunks":6}"#, true),
        (r#"{"stop_reason":"max_tokens"}"#, false),
        (r#"{"stop_reason":"max_tokens"}"#, true),
        (r#"{"stop_reason":"refusal"}"#, false),
        (r#"{"stop_reason":"refusal"}"#, true),
    ] {
        let body = with(directive, stream);
        let before = n();
        let _ = chat(&gw, TEAM_A, &body);
        let again = chat(&gw, TEAM_A, &body);
        assert_ne!(cache_header(&again), "HIT", "{body}: {}", again.text());
        assert_eq!(n(), before + 2, "{body}");
    }
}

fn store_length_when_allowed(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60, store_length: true }", driver);
    let body = r#"{"model":"gpt","messages":[{"role":"user","content":"long"}],"mock":{"stop_reason":"max_tokens"}}"#;
    assert_eq!(cache_header(&chat(&gw, TEAM_A, body)), "MISS");
    let hit = chat(&gw, TEAM_A, body);
    assert_eq!(cache_header(&hit), "HIT");
    assert_eq!(hit.json()["choices"][0]["finish_reason"], "length");
    assert_eq!(mock.stats().requests, 1);
}

fn scopes_and_purges(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60, scope: shared }", driver);
    assert_eq!(cache_header(&chat(&gw, TEAM_A, ASK)), "MISS");
    // Shared: another key is served the same answer.
    assert_eq!(cache_header(&chat(&gw, ADMIN, ASK)), "HIT");
    assert_eq!(mock.stats().requests, 1);
    let other = ASK.replace("cache?", "cache!");
    assert_eq!(cache_header(&chat(&gw, ADMIN, &other)), "MISS");

    let purge = |body: &str| gw.admin_call("POST", "/cache/purge", body);
    let r = purge(r#"{"model":"plain"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["purged"], 0);
    // By key: the entry team-a's request stored goes, admin's stays.
    assert_eq!(purge(r#"{"key":"config:team-a"}"#).json()["purged"], 1);
    assert_eq!(cache_header(&chat(&gw, ADMIN, ASK)), "MISS");
    assert_eq!(cache_header(&chat(&gw, ADMIN, &other)), "HIT");
    assert_eq!(purge(r#"{"model":"gpt"}"#).json()["purged"], 2);
    assert_eq!(cache_header(&chat(&gw, ADMIN, &other)), "MISS");
    assert_eq!(purge("").json()["purged"], 1);
    let refused = purge(r#"{"nope":1}"#);
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.json()["error"]["code"],
        "unknown_field",
        "{}",
        refused.text()
    );
    let refused = purge(r#"{"model":3}"#);
    assert_eq!(
        refused.json()["error"]["param"],
        "model",
        "{}",
        refused.text()
    );
    let unauthorized = http::request(gw.admin.unwrap(), "POST", "/cache/purge", &[], b"");
    assert_eq!(unauthorized.status, 401);
    gw.wait_metric("shardgate_cache_entries 0");
}

/// `scope: team` shares within a team only; keys come from the store through the admin API.
fn team_scope(driver: Driver) {
    let (mock, gw) = start("{ ttl_s: 60, scope: team }", driver);
    let mut keys = Vec::new();
    for team in ["red", "blue"] {
        let r = gw.admin_call("POST", "/team/new", &format!(r#"{{"team_id":"{team}"}}"#));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for (team, alias) in [("red", "r1"), ("red", "r2"), ("blue", "b1")] {
        let k = gw.admin_call(
            "POST",
            "/key/generate",
            &format!(r#"{{"key_alias":"{alias}","team_id":"{team}"}}"#),
        );
        assert_eq!(k.status, 200, "{}", k.text());
        keys.push(k.json()["key"].as_str().unwrap().to_owned());
    }
    assert!(common::eventually(Duration::from_secs(5), || chat(
        &gw, &keys[2], ASK
    )
    .status
        == 200));
    let before = mock.stats().requests;
    assert_eq!(cache_header(&chat(&gw, &keys[0], ASK)), "MISS");
    assert_eq!(
        cache_header(&chat(&gw, &keys[1], ASK)),
        "HIT",
        "the same team shares"
    );
    assert_eq!(
        cache_header(&chat(&gw, &keys[2], ASK)),
        "HIT",
        "blue stored its own earlier"
    );
    assert_eq!(
        cache_header(&chat(&gw, TEAM_A, ASK)),
        "MISS",
        "a key without a team is its own"
    );
    assert_eq!(mock.stats().requests, before + 2);
}

both_drivers!(
    hits_and_misses_across_tenants,
    one_answer_serves_both_forms,
    controls_are_honoured,
    only_complete_answers_are_stored,
    store_length_when_allowed,
    scopes_and_purges,
    team_scope,
);
