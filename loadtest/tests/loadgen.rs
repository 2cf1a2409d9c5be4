//! The load generator against the in-process mock upstream: an open-loop run issues about
//! rate × duration requests without errors, a closed loop and a streaming run work, and a dead
//! target turns into errors rather than a hang.

use std::time::{Duration, Instant};

use loadtest::load::{Config, Load, run};
use loadtest::mock::{MockConfig, MockServer};

const BODY: &str = r#"{"model":"gpt-test","messages":[{"role":"user","content":"hello there"}]}"#;

fn chat(m: &MockServer, load: Load, secs: f64, body: &str) -> Config {
    let url = format!("{}/v1/chat/completions", m.base_url());
    let mut c = Config::new(&url, load, Duration::from_secs_f64(secs)).unwrap();
    c.method = "POST".into();
    c.body = body.as_bytes().to_vec();
    c.warmup = Duration::from_millis(200);
    c.connections = 8;
    c
}

#[test]
fn open_loop_issues_rate_times_duration() {
    let m = MockServer::start(MockConfig::default()).unwrap();
    let cfg = chat(&m, Load::Open { rate: 200.0 }, 1.0, BODY);
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert!((180..=220).contains(&r.requests), "{r:?}");
    assert_eq!(r.mode, "open");
    assert_eq!(r.rate_target, Some(200.0));
    assert!(r.latency_us.p50 > 0 && r.latency_us.p50 < 100_000, "{r:?}");
    assert!(r.latency_us.max >= r.latency_us.p99);
    // Warm-up requests reached the mock too, and nothing more than scheduled.
    let served = m.stats().requests;
    assert!(served >= r.requests + 30 && served <= 250, "{served} {r:?}");
    let j: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(j["requests"], r.requests);
    assert!(j["latency_us"]["p999"].is_u64());
    assert!(j.get("ttfb_us").is_none());
}

#[test]
fn closed_loop_runs_back_to_back() {
    let m = MockServer::start(MockConfig::default()).unwrap();
    let cfg = chat(&m, Load::Closed { concurrency: 2 }, 0.5, BODY);
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!((r.mode, r.connections), ("closed", 2));
    assert!(r.requests > 50, "{r:?}");
}

#[test]
fn streams_report_ttfb_and_event_gaps() {
    let m = MockServer::start(MockConfig::default()).unwrap();
    let body = r#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"hi"}],"mock":{"chunks":5,"interval_ms":10}}"#;
    let mut cfg = chat(&m, Load::Open { rate: 20.0 }, 1.0, body);
    cfg.stream = true;
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert!((15..=25).contains(&r.requests), "{r:?}");
    let gap = r.event_gap_us.unwrap();
    assert!((5_000..30_000).contains(&gap.p50), "{gap:?}");
    let ttfb = r.ttfb_us.unwrap();
    assert!(ttfb.p50 < r.latency_us.p50, "{ttfb:?} {r:?}");
    assert!(r.latency_us.p50 >= 40_000, "{r:?}");
}

#[test]
fn slow_responses_are_bounded_by_the_grace_period() {
    let m = MockServer::start(MockConfig::default()).unwrap();
    let body = r#"{"model":"gpt-test","messages":[],"mock":{"hang":true}}"#;
    let mut cfg = chat(&m, Load::Open { rate: 50.0 }, 0.5, body);
    cfg.connections = 2;
    cfg.grace = Duration::from_millis(300);
    let started = Instant::now();
    let r = run(&cfg).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.requests, 0);
    assert!((20..=30).contains(&r.errors), "{r:?}");
    assert_eq!(r.errors, r.timeouts, "{r:?}");
}

#[test]
fn a_dead_target_counts_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/");
    let mut cfg =
        Config::new(&url, Load::Open { rate: 100.0 }, Duration::from_millis(300)).unwrap();
    cfg.warmup = Duration::ZERO;
    cfg.connections = 4;
    let r = run(&cfg).unwrap();
    assert_eq!(r.requests, 0);
    assert!(r.errors >= 25 && r.errors == r.io_errors, "{r:?}");
}

/// A server that answers one request per connection, then closes it without saying so.
fn closes_after_one_request() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    addr
}

#[test]
fn a_connection_closed_while_idle_is_retried_once() {
    let addr = closes_after_one_request();
    let url = format!("http://{addr}/");
    let mut cfg = Config::new(&url, Load::Open { rate: 40.0 }, Duration::from_millis(500)).unwrap();
    cfg.warmup = Duration::ZERO;
    cfg.connections = 1;
    let r = run(&cfg).unwrap();
    assert_eq!(r.errors, 0, "{r:?}");
    assert!((18..=22).contains(&r.requests), "{r:?}");
}

#[test]
fn idle_connections_stay_open_through_the_run() {
    let m = MockServer::start(MockConfig::default()).unwrap();
    let mut cfg = chat(&m, Load::Open { rate: 100.0 }, 0.5, BODY);
    cfg.idle = 50;
    let (r, during) = std::thread::scope(|s| {
        // The mock's connection gauge, read halfway through the measured period.
        let watcher = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(550));
            m.stats().open_connections
        });
        let r = run(&cfg).unwrap();
        (r, watcher.join().unwrap())
    });
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(
        (
            r.idle_connections,
            r.idle_opened,
            r.idle_open,
            r.idle_failed
        ),
        (Some(50), Some(50), Some(50), Some(0)),
        "{r:?}"
    );
    assert!(r.idle_first_error.is_none(), "{r:?}");
    assert_eq!(
        during, 58,
        "50 idle and 8 load connections open during the run"
    );
    // The check after the run used the same sockets: no connection beyond those 58.
    assert_eq!(m.stats().total_connections, 58);
}

#[test]
fn idle_connections_the_target_closed_are_counted_as_failed() {
    let addr = closes_after_one_request();
    let url = format!("http://{addr}/");
    let mut cfg = Config::new(&url, Load::Open { rate: 20.0 }, Duration::from_millis(300)).unwrap();
    cfg.warmup = Duration::ZERO;
    cfg.connections = 1;
    cfg.idle = 5;
    let r = run(&cfg).unwrap();
    assert_eq!(
        (r.idle_opened, r.idle_open, r.idle_failed),
        (Some(5), Some(0), Some(5)),
        "{r:?}"
    );
    let e = r.idle_first_error.unwrap();
    assert!(e.starts_with("after the run"), "{e}");
}
