//! Black-box: Vertex AI with a service-account key. The gateway signs a JWT with the key,
//! exchanges it at the key's `token_uri` (the mock's `/token`) on a credentials thread, and
//! sends the token it got as a bearer to Google's and Anthropic's publisher paths; a key whose
//! token endpoint is down leaves requests with a clear error naming why, never a hang.

mod common;

use std::time::Duration;

use common::http;
use common::{ADMIN, Driver, Gateway, TempDir, eventually, mock};

fn key_file(dir: &TempDir, token_uri: &str) -> std::path::PathBuf {
    let pem = include_str!("fixtures/vertex/service_account_key.pem");
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "kid-1",
        "private_key": pem,
        "client_email": "gw@test-project.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    let path = dir.0.join("sa.json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

fn config(base: &str, key: &std::path::Path) -> String {
    format!(
        r#"server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  pin: false
providers:
  vx:
    protocol: vertex
    base_url: {base}
    project: test-project
    region: us-east5
    credentials: {{ file: {key} }}
models:
  gem:
    targets: [ {{ provider: vx, model: gemini-2.5-flash }} ]
    retry: {{ attempts: 1 }}
  cl:
    targets: [ {{ provider: vx, model: claude-sonnet-4-5 }} ]
    retry: {{ attempts: 1 }}
keys:
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#,
        key = key.display()
    )
}

fn chat(gw: &Gateway, model: &str) -> http::Response {
    let auth = format!("Bearer {ADMIN}");
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    http::request(
        gw.api,
        "POST",
        "/v1/chat/completions",
        &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ],
        body.as_bytes(),
    )
}

#[test]
fn a_service_account_key_becomes_a_bearer_token_for_both_publishers() {
    let m = mock();
    let dir = TempDir::new();
    let key = key_file(&dir, &format!("{}/token", m.base_url()));
    let gw = Gateway::start(&config(&m.base_url(), &key), Driver::Uring);
    // The first token arrives from the credentials thread, off the request path.
    let ready = eventually(Duration::from_secs(20), || chat(&gw, "gem").status == 200);
    assert!(ready, "{}", chat(&gw, "gem").text());
    let seen = m.stats().last_request.unwrap();
    assert_eq!(
        seen.path,
        "/v1/projects/test-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"
    );
    let bearer = seen.header("authorization").unwrap().to_owned();
    assert!(bearer.starts_with("Bearer mock-token-"), "{bearer}");
    let r = chat(&gw, "cl");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let seen = m.stats().last_request.unwrap();
    assert_eq!(
        seen.path,
        "/v1/projects/test-project/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5:rawPredict"
    );
    assert_eq!(seen.header("authorization"), Some(bearer.as_str()));
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none(), "{body}");
}

#[test]
fn a_token_endpoint_that_is_down_is_a_clear_error() {
    let m = mock();
    let dir = TempDir::new();
    // Nothing listens on port 9 of loopback.
    let key = key_file(&dir, "http://127.0.0.1:9/token");
    let gw = Gateway::start(&config(&m.base_url(), &key), Driver::Uring);
    let r = chat(&gw, "gem");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    let text = r.text();
    assert!(text.contains("no Google access token yet"), "{text}");
    assert_eq!(m.stats().api("vertex_gemini"), 0);
}

/// A target whose token has not arrived yet is passed over, not benched: once the token
/// endpoint answers, the next request is served (a 5-minute credentials bench would refuse it).
#[test]
fn a_token_that_arrives_late_is_used_at_once() {
    use std::io::{Read, Write};
    let m = mock();
    let dir = TempDir::new();
    // A free port, closed for now: the first exchanges are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = key_file(&dir, &format!("http://127.0.0.1:{port}/token"));
    let gw = Gateway::start(&config(&m.base_url(), &key), Driver::Uring);
    let r = chat(&gw, "gem");
    assert!(r.status >= 500, "{} {}", r.status, r.text());
    assert!(
        r.text().contains("no Google access token yet"),
        "{}",
        r.text()
    );
    // Now the token endpoint comes up and answers every exchange.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let body =
                r#"{"access_token":"mock-token-late","expires_in":3600,"token_type":"Bearer"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let served = eventually(Duration::from_secs(15), || chat(&gw, "gem").status == 200);
    assert!(served, "{}", chat(&gw, "gem").text());
    let seen = m.stats().last_request.unwrap();
    assert_eq!(seen.header("authorization"), Some("Bearer mock-token-late"));
}
