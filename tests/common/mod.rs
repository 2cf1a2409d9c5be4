//! Black-box test support: start the real `shardgate` binary on port 0 (on a chosen monoio
//! driver) against the in-process mock upstream from `loadtest/`, and talk to it over raw HTTP/1.1.
#![allow(dead_code)]

pub mod http;
pub mod pg;
pub mod redis;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use loadtest::mock::{MockConfig, MockServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Uring,
    Epoll,
}

/// Generates one test per monoio driver from `fn(Driver)`.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[test]
            fn io_uring() {
                super::$name(super::common::Driver::Uring)
            }
            #[test]
            fn epoll() {
                super::$name(super::common::Driver::Epoll)
            }
        })*
    };
}

pub fn mock() -> MockServer {
    MockServer::start(MockConfig::default()).expect("mock upstream starts")
}

/// A config with one OpenAI-protocol provider `up` at `mock`, a restricted key and an open one.
pub fn config(upstream_base: &str, extra_server: &str) -> String {
    format!(
        r#"
server:
  listen: 127.0.0.1:0
  admin_listen: 127.0.0.1:0
  shards: 1
  pin: false
{extra_server}
providers:
  up:
    protocol: openai
    base_url: {upstream_base}/v1
    api_key: {{ env: UPSTREAM_KEY }}
    timeouts: {{ connect_ms: 1000, first_byte_ms: 1500, total_ms: 8000 }}
models:
  gpt-4o-mini:
    targets:
      - {{ provider: up, model: upstream-mini }}
    retry: {{ attempts: 1 }}
  text-embedding-3-small:
    targets:
      - {{ provider: up, model: upstream-embed }}
  restricted:
    targets:
      - {{ provider: up, model: upstream-restricted }}
keys:
  - name: team-a
    key: {{ env: TEAM_A_KEY }}
    models: [gpt-4o-mini, text-embedding-3-small]
  - name: admin
    key: {{ env: ADMIN_KEY }}
"#
    )
}

pub const TEAM_A: &str = "sg-team-a";
pub const ADMIN: &str = "sg-admin";
pub const UPSTREAM_KEY: &str = "sk-upstream-secret";
/// The admin master key of configs that set `master_key: { env: MASTER_KEY }`.
pub const MASTER: &str = "sg-master-key-for-tests-0123";

pub struct Gateway {
    child: Child,
    pub api: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub stderr: Arc<Mutex<String>>,
    pub stdout: Arc<Mutex<String>>,
    _dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("shardgate-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary under test: this build's, or `SHARDGATE_BIN` (a release build, to take the
/// numbers some tests print as they would be in production).
pub fn binary() -> String {
    std::env::var("SHARDGATE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shardgate").to_owned())
}

fn drain(
    r: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
    ready: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut lines = BufReader::new(r).lines();
        while let Some(Ok(line)) = lines.next() {
            if let Some(tx) = &ready
                && (line.contains(" ready: api=") || line.contains("ERROR"))
            {
                let _ = tx.send(line.clone());
            }
            let mut s = into.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
}

impl Gateway {
    pub fn start(config: &str, driver: Driver) -> Gateway {
        Self::try_start(config, driver, &[])
            .unwrap_or_else(|e| panic!("gateway did not start: {e}"))
    }

    /// Starts the binary; `Err` holds its stderr if it exited or never became ready.
    pub fn try_start(
        config: &str,
        driver: Driver,
        env: &[(&str, &str)],
    ) -> Result<Gateway, String> {
        let dir = TempDir::new();
        let path = dir.0.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let mut cmd = Command::new(binary());
        cmd.arg("serve").arg("--config").arg(&path);
        cmd.env("UPSTREAM_KEY", UPSTREAM_KEY)
            .env("TEAM_A_KEY", TEAM_A)
            .env("ADMIN_KEY", ADMIN)
            .env("MASTER_KEY", MASTER);
        cmd.env_remove("MONOIO_FORCE_LEGACY_DRIVER");
        if driver == Driver::Epoll {
            cmd.env("MONOIO_FORCE_LEGACY_DRIVER", "1");
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn shardgate");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        drain(child.stderr.take().unwrap(), stderr.clone(), Some(tx));
        drain(child.stdout.take().unwrap(), stdout.clone(), None);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(50))
                && let Some(rest) = line.split(" ready: api=").nth(1)
            {
                {
                    let mut parts = rest.split_whitespace();
                    let api = parts.next().unwrap().parse().unwrap();
                    let admin = parts
                        .next()
                        .and_then(|a| a.strip_prefix("admin="))
                        .and_then(|a| a.parse().ok());
                    return Ok(Gateway {
                        child,
                        api,
                        admin,
                        stderr,
                        stdout,
                        _dir: dir,
                    });
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(50));
                return Err(format!("exited with {status}: {}", stderr.lock().unwrap()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("not ready in time: {}", stderr.lock().unwrap()));
            }
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY-free: libc::kill on our own child's pid.
        send_signal(self.pid(), sig);
    }

    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The config file the gateway was started with (rewrite it, then reload).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._dir.0.join("config.yaml")
    }

    /// An admin call with the test master key ([`MASTER`]).
    pub fn admin_call(&self, method: &str, path: &str, body: &str) -> http::Response {
        let auth = format!("Bearer {MASTER}");
        let headers: &[(&str, &str)] = &[
            ("authorization", &auth),
            ("content-type", "application/json"),
        ];
        let addr = self.admin.expect("admin listener");
        http::request(addr, method, path, headers, body.as_bytes())
    }

    /// `POST /v1/chat/completions` with `body`, as `key`, on a fresh connection.
    pub fn chat_as(&self, key: &str, body: &str) -> http::Response {
        let auth = format!("Bearer {key}");
        let headers: &[(&str, &str)] = &[("authorization", &auth)];
        http::request(
            self.api,
            "POST",
            "/v1/chat/completions",
            headers,
            body.as_bytes(),
        )
    }

    pub fn admin_get(&self, path: &str) -> http::Response {
        http::request(self.admin.expect("admin listener"), "GET", path, &[], b"")
    }

    /// Polls `/metrics` until `line` appears (metrics are merged on scrape; the request that
    /// produced them may still be settling); fails the test if it does not within 5 s.
    pub fn wait_metric(&self, line: &str) -> String {
        self.wait_metric_within(line, Duration::from_secs(5))
    }

    /// [`Gateway::wait_metric`] with its own deadline (a reconnect waits out a backoff).
    pub fn wait_metric_within(&self, line: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.admin_get("/metrics").text();
            if text.lines().any(|l| l == line) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "metric line {line:?} never appeared in:\n{text}\nstderr:\n{}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The value of an unlabelled metric, if `/metrics` has it.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let text = self.admin_get("/metrics").text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

pub fn send_signal(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` until it holds or `within` passes.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What an OpenAI answer cost, from its usage at `input` and `output` dollars per million
/// tokens.
pub fn cost(answer: &serde_json::Value, input: f64, output: f64) -> f64 {
    let u = &answer["usage"];
    (u["prompt_tokens"].as_f64().unwrap() * input
        + u["completion_tokens"].as_f64().unwrap() * output)
        / 1e6
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

/// Today's UTC date, `YYYY-MM-DD` (the spend report's day).
pub fn today() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    shardgate::observe::time::iso8601(ms)[..10].to_owned()
}
