//! A real Redis for cluster tests, started by `scripts/services/redis.sh` (which installs
//! Debian's package when it is missing): one shared server per test binary, or a private one
//! for a test that stops and restarts it. Each test takes its own key prefix. The servers stop
//! with the test binary (the script's OWNER watch) or by PID.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Redis {
    pub url: String,
    pub port: u16,
    pid: i32,
}

impl Redis {
    /// A server of its own, on `port` or a free one.
    pub fn start(port: Option<u16>) -> Redis {
        // One at a time: a first start may install the package.
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = STARTING.lock().unwrap_or_else(|e| e.into_inner());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/redis.sh");
        let mut cmd = Command::new("bash");
        cmd.arg(script).env("OWNER", std::process::id().to_string());
        if let Some(p) = port {
            cmd.env("PORT", p.to_string());
        }
        let out = cmd.output().expect("run scripts/services/redis.sh");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "redis.sh failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("redis.sh printed no {name}: {text}"))
                .to_owned()
        };
        let url = field("REDIS_URL=");
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        let pid = field("REDIS_PID=").parse().unwrap();
        Redis { url, port, pid }
    }

    /// The binary's shared server.
    pub fn shared() -> &'static Redis {
        static SHARED: OnceLock<Redis> = OnceLock::new();
        SHARED.get_or_init(|| Redis::start(None))
    }

    /// Stops the server at once (SIGKILL, by its PID).
    pub fn kill(&self) {
        super::send_signal(self.pid, 9);
        let gone = super::eventually(std::time::Duration::from_secs(5), || {
            !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
        });
        assert!(gone, "redis-server {} did not stop", self.pid);
    }

    /// A fresh, empty server on the same port.
    pub fn restart(&mut self) {
        *self = Redis::start(Some(self.port));
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.pid.to_string())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// A key prefix no other test in this run uses.
pub fn prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}:",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A loopback port nothing listens on (for a gateway started before its Redis).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
