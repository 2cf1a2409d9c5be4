//! Black-box: the process — startup checks, `check`, shards, and draining on SIGTERM.

mod common;

use std::process::Command;
use std::time::Duration;

use common::http::{self, Client, sse_data};
use common::{Driver, Gateway, TEAM_A, TempDir, binary, config, mock};

fn shutdown_lets_streams_finish(d: Driver) {
    let m = mock();
    let mut gw = Gateway::start(&config(&m.base_url(), "  drain_timeout_ms: 10000"), d);
    let mut c = Client::connect(gw.api);
    let body = r#"{"model":"gpt-4o-mini","stream":true,"mock":{"chunks":8,"interval_ms":100}}"#;
    c.send(
        "POST",
        "/v1/chat/completions",
        &[("authorization", &format!("Bearer {TEAM_A}"))],
        body.as_bytes(),
    );
    assert_eq!(c.read_head().unwrap().0, 200);
    c.read_chunk().unwrap().expect("first event");
    gw.signal(15);
    let (chunks, clean) = c.read_stream();
    assert!(clean, "the in-flight stream was cut by shutdown");
    let all: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(sse_data(&all).last().map(String::as_str), Some("[DONE]"));
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("exits after draining");
    assert!(status.success(), "{status}");
    assert!(
        std::net::TcpStream::connect(gw.api).is_err(),
        "still accepting after shutdown"
    );
    // The reader thread may still be copying the exited process's last lines.
    assert!(common::eventually(Duration::from_secs(5), || gw
        .stderr
        .lock()
        .unwrap()
        .contains("draining")));
}

fn sigint_with_nothing_in_flight_exits_at_once(d: Driver) {
    let m = mock();
    let mut gw = Gateway::start(&config(&m.base_url(), ""), d);
    // An idle keep-alive connection must not hold shutdown up.
    let mut c = Client::connect(gw.api);
    c.send(
        "GET",
        "/v1/models",
        &[("authorization", &format!("Bearer {TEAM_A}"))],
        b"",
    );
    assert_eq!(c.read_response().status, 200);
    gw.signal(2);
    let status = gw
        .wait_exit(Duration::from_secs(3))
        .expect("exits promptly");
    assert!(status.success());
}

both_drivers!(
    shutdown_lets_streams_finish,
    sigint_with_nothing_in_flight_exits_at_once
);

#[test]
fn refuses_a_port_another_process_listens_on() {
    let m = mock();
    let first = Gateway::start(&config(&m.base_url(), ""), Driver::Uring);
    let taken = config(&m.base_url(), "")
        .replace("listen: 127.0.0.1:0\n", &format!("listen: {}\n", first.api));
    let err = Gateway::try_start(&taken, Driver::Uring, &[])
        .err()
        .expect("second gateway must refuse");
    assert!(err.contains("already in use"), "{err}");
    // The mock itself also holds a port: refused the same way.
    let on_mock = config(&m.base_url(), "")
        .replace("listen: 127.0.0.1:0\n", &format!("listen: {}\n", m.addr()));
    assert!(Gateway::try_start(&on_mock, Driver::Uring, &[]).is_err());
}

#[test]
fn shards_serve_and_report_ready() {
    let m = mock();
    let cfg = config(&m.base_url(), "").replace("shards: 1", "shards: 2");
    let gw = Gateway::start(&cfg, Driver::Uring);
    assert!(gw.admin_get("/ready").text().contains("\"shards\":2"));
    for _ in 0..20 {
        let r = http::request(
            gw.api,
            "POST",
            "/v1/chat/completions",
            &[("authorization", &format!("Bearer {TEAM_A}"))],
            br#"{"model":"gpt-4o-mini"}"#,
        );
        assert_eq!(r.status, 200);
    }
    let text = gw.wait_metric(
        "shardgate_requests_total{model=\"gpt-4o-mini\",provider=\"up\",status=\"200\"} 20",
    );
    assert!(text.contains("shardgate_shards 2"));
    assert!(
        text.contains("status=\"200\"} 20"),
        "metrics merged from both shards:\n{text}"
    );
}

#[test]
fn missing_secret_env_names_the_variable() {
    let cfg = config("http://127.0.0.1:9", "");
    let dir = TempDir::new();
    let path = dir.0.join("c.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = Command::new(binary())
        .args(["serve", "--config"])
        .arg(&path)
        .env("TEAM_A_KEY", "a")
        .env("ADMIN_KEY", "b")
        .env_remove("UPSTREAM_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("providers.up.api_key: environment variable UPSTREAM_KEY is not set"),
        "{err}"
    );
}

#[test]
fn check_prints_every_problem_with_its_path() {
    let dir = TempDir::new();
    let bad = dir.0.join("bad.yaml");
    std::fs::write(
        &bad,
        "server:\n  shards: many\nproviders:\n  openai:\n    protocol: openai\n    api_key: { env: SG_TEST_UNSET_VAR }\nmodels:\n  gpt-4o:\n    targets:\n      - { provider: openai, model: a }\n      - { provider: opnai, model: b }\n    weight: 3\n",
    )
    .unwrap();
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "server.shards: expected \"auto\" or an integer",
        "providers.openai.api_key: environment variable SG_TEST_UNSET_VAR is not set",
        "models.gpt-4o.targets[1].provider: no provider named \"opnai\"",
        "models.gpt-4o.weight: unknown field",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    let good = dir.0.join("good.yaml");
    std::fs::write(&good, config("http://127.0.0.1:9", "")).unwrap();
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(&good)
        .env("UPSTREAM_KEY", "x")
        .env("TEAM_A_KEY", "a")
        .env("ADMIN_KEY", "b")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(binary())
        .args(["serve", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_keys_runs_open_and_says_so() {
    let m = mock();
    let cfg = config(&m.base_url(), "");
    let open = &cfg[..cfg.find("keys:").unwrap()];
    let gw = Gateway::start(open, Driver::Uring);
    assert!(gw.stderr.lock().unwrap().contains("NO KEYS CONFIGURED"));
    let r = http::request(
        gw.api,
        "POST",
        "/v1/chat/completions",
        &[],
        br#"{"model":"restricted"}"#,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn embedded_default_answers_without_network() {
    // The default config binds the documented ports; run it only when they are free.
    let free = |p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    if !free(8080) || !free(9090) {
        eprintln!("ports 8080/9090 busy: embedded default checked by the config unit test only");
        return;
    }
    let mut child = Command::new(binary())
        .args(["serve", "--shards", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let up = common::eventually(Duration::from_secs(10), || {
        std::net::TcpStream::connect(addr).is_ok()
    });
    let r = up.then(|| {
        http::request(
            addr,
            "POST",
            "/v1/chat/completions",
            &[],
            br#"{"model":"gpt-4o-mini","stream":true}"#,
        )
    });
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    let r = r.expect("embedded default listens on 8080");
    assert_eq!(r.status, 200);
    assert_eq!(sse_data(&r.body).last().map(String::as_str), Some("[DONE]"));
    assert!(status.success());
}
