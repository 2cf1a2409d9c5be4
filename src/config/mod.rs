//! Configuration: YAML text → one immutable, validated [`Snapshot`].
//!
//! `parse` walks the YAML tree by hand so that *every* problem is reported with its path
//! (`models.gpt-4o.targets[1].provider: no provider named "opnai"`), not just the first one a
//! deserialiser trips over. Secrets are resolved here, once, on the control thread; the snapshot
//! holds them and nothing on the request path reads the environment or the disk.

mod parse;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use secret::Secret;

use crate::auth::KeyTable;
use crate::providers::Protocol;
use crate::providers::family::Vendor;

/// The embedded default: a built-in mock provider, no network, no auth.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// Everything a request needs, validated. Shared read-only by all shards.
#[derive(Debug)]
pub struct Snapshot {
    pub server: Server,
    pub providers: Vec<Provider>,
    /// Distinct upstream origins; providers point into this, pools are kept per origin.
    pub origins: Vec<Origin>,
    pub models: Vec<Model>,
    pub model_index: HashMap<String, usize>,
    pub keys: KeyTable,
}

impl Snapshot {
    pub fn model(&self, alias: &str) -> Option<(usize, &Model)> {
        let i = *self.model_index.get(alias)?;
        Some((i, &self.models[i]))
    }
}

#[derive(Debug, Clone)]
pub struct Server {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub shards: Shards,
    pub pin: bool,
    /// CPUs for shards, in order (shard i on `cpus[i % len]`); `None`: the allowed set.
    pub cpus: Option<Vec<usize>>,
    pub io_uring_entries: u32,
    /// Kernel-side submission polling (SQPOLL) with this idle time, where the kernel allows it.
    pub sqpoll_idle_ms: Option<u32>,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub keepalive_timeout: Duration,
    pub header_timeout: Duration,
    pub drain_timeout: Duration,
    pub access_log: AccessLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shards {
    Auto,
    Count(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    Stdout,
    Stderr,
    File(PathBuf),
    Off,
}

#[derive(Debug)]
pub struct Provider {
    pub name: String,
    pub protocol: Protocol,
    /// The family row named by `protocol:` (auth style, URL style, rejected fields).
    pub vendor: &'static Vendor,
    /// Index into `Snapshot::origins`; `None` for the built-in mock.
    pub origin: Option<usize>,
    /// Path prefix from `base_url` (e.g. `/v1`), without a trailing slash.
    pub base_path: String,
    pub api_key: Option<Secret>,
    /// Extra request headers: the config's `headers`, plus the ones its protocol settings
    /// imply (`anthropic-version`, `anthropic-beta`, `openai-organization`, …).
    pub headers: Vec<(String, String)>,
    pub timeouts: Timeouts,
    /// Azure's `api-version` query value.
    pub api_version: Option<String>,
    /// `max_tokens` sent to a protocol that requires it when the client gave none.
    pub default_max_tokens: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            first_byte: Duration::from_secs(120),
            total: Duration::from_secs(600),
        }
    }
}

/// One scheme://host:port an upstream connection can be made to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `Host` header value: host, plus `:port` when it is not the scheme's default.
    pub authority: String,
    pub ca_file: Option<PathBuf>,
    pub max_idle: usize,
    pub idle_timeout: Duration,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

#[derive(Debug)]
pub struct Model {
    pub alias: String,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub provider: usize,
    pub model: String,
}

/// Every problem found in a config file, each with its path.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.0 {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Parses and validates config text. `env` resolves `{ env: NAME }` secrets.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Snapshot, Problems> {
    parse::parse(text, env)
}

/// Reads a config file (or the embedded default when `path` is `None`) with the process environment.
pub fn load(path: Option<&std::path::Path>) -> Result<Snapshot, Problems> {
    let text = match path {
        None => EMBEDDED_DEFAULT.to_owned(),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Problems(vec![format!("{}: cannot read: {e}", p.display())]))?,
    };
    load_str(&text, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests;
