//! A real PostgreSQL server for black-box tests, run by `scripts/services/postgres.sh` (which
//! installs Debian's package when the server is missing): one shared server per test binary
//! ([`shared`]), a fresh database per test ([`PgServer::database`]), or a test's own server
//! when it stops and restarts it ([`PgServer::start`]). A server stops by itself once the test
//! binary that started it is gone.

use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct PgServer {
    dir: std::path::PathBuf,
    /// `postgres://shardgate@127.0.0.1:PORT/postgres`.
    pub url: String,
}

fn script(args: &[&str]) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/services/postgres.sh");
    let out = Command::new(path)
        .args(args)
        .output()
        .expect("run postgres.sh");
    assert!(
        out.status.success(),
        "postgres.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

static N: AtomicU64 = AtomicU64::new(0);

impl PgServer {
    /// A server of this test's own, on a free loopback port.
    pub fn start() -> PgServer {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("shardgate-pg-{}-{n}", std::process::id()));
        let owner = std::process::id().to_string();
        let url = script(&["start", dir.to_str().unwrap(), "", &owner]);
        PgServer { dir, url }
    }

    /// Stops the server (its postmaster, by PID) and waits until it is gone.
    pub fn stop(&self) {
        script(&["stop", self.dir.to_str().unwrap()]);
    }

    /// Starts it again on the same port, with its data.
    pub fn restart(&self) {
        script(&["start", self.dir.to_str().unwrap()]);
    }

    /// A new, empty database; returns its URL.
    pub fn database(&self) -> String {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("t_{}_{n}", std::process::id());
        let mut c = postgres::Client::connect(&self.url, postgres::NoTls).expect("connect");
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("{}/{name}", self.url.rsplit_once('/').unwrap().0)
    }
}

/// The test binary's shared server.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

/// The `store:` section of a config on `url`, spooling in `spool`.
pub fn store(url: &str, spool: &std::path::Path) -> String {
    format!(
        "store:\n  postgres:\n    url: \"{url}\"\n    spool: {}\n",
        spool.display()
    )
}
