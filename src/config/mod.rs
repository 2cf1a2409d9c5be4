//! Configuration: YAML text → one immutable, validated [`Snapshot`].
//!
//! `parse` walks the YAML tree by hand so that *every* problem is reported with its path
//! (`models.gpt-4o.targets[1].provider: no provider named "opnai"`), not just the first one a
//! deserialiser trips over. Secrets are resolved here, once, on the control thread; the snapshot
//! holds them and nothing on the request path reads the environment or the disk.

pub mod cache;
pub mod cluster;
pub mod guardrail;
pub mod labels;
mod limits;
mod parse;
mod protocol;
pub mod routes;
mod secret;
mod wire;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use labels::{LabelNames, Labels};
pub use limits::AliasLimits;
pub use routes::{
    BreakerPolicy, FallbackOn, HealthPolicy, HedgePolicy, Probe, RetryPolicy, RouteTimeouts, Rule,
    Strategy, When,
};
pub use secret::Secret;

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
    /// Keys from the config file (read-only; the store's keys are published apart from config).
    pub keys: Vec<ConfigKey>,
    pub store: StoreConfig,
    /// Metric label ids (see [`labels`]); `load_str` assigns fresh ones, a reload the previous
    /// generation's.
    pub labels: Labels,
    /// Each alias's own limits as pool slots, by model index; control fills it (the slots
    /// outlive generations), `load_str` leaves it empty.
    pub alias_limits: Vec<Vec<crate::limits::Limit>>,
    /// `end_users:`: limits each end user gets (counted per user).
    pub end_user_limits: crate::store::Limits,
    /// `cache:`: every shard's response-cache budget.
    pub cache: cache::CacheConfig,
    /// `guardrails:`: every policy, compiled once for this generation.
    pub guardrails: guardrail::Guardrails,
    /// `cluster:`: the replicas' shared pools (none: a single node).
    pub cluster: Option<cluster::Cluster>,
}

/// A key from the config file's `keys:` list.
#[derive(Debug, Clone)]
pub struct ConfigKey {
    pub name: String,
    pub hash: crate::auth::Digest,
    /// Aliases it may use; `None`: all.
    pub models: Option<Vec<String>>,
    /// LiteLLM's limit fields, as on store keys.
    pub limits: crate::store::Limits,
}

/// Where the store (keys, teams) lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// No `store:` section: in memory, lost on exit (said at start).
    Memory,
    File(PathBuf),
    /// Cluster mode's shared store.
    Postgres(PostgresStore),
}

/// `store.postgres`: the database's URL, and where this replica keeps what it cannot write
/// while the database is away (the ledger spool and the last key snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresStore {
    pub url: Secret,
    /// Default `shardgate-spool` in the working directory; one process a directory.
    pub spool: PathBuf,
    pub spool_max_mb: u64,
}

impl Snapshot {
    /// Whether requests are written to the spend ledger.
    pub fn ledger_on(&self) -> bool {
        self.server
            .ledger
            .unwrap_or(!matches!(self.store, StoreConfig::Memory))
    }

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
    /// Each write to a client must finish within this (a client that stops reading).
    pub write_timeout: Duration,
    /// Open client connections per shard; more are closed on accept.
    pub max_connections: usize,
    /// Requests in flight per shard; more get 503 `overloaded`.
    pub max_inflight: usize,
    /// Largest non-streamed upstream body, in bytes received (and largest translated answer).
    pub max_response_bytes: usize,
    /// Largest single upstream SSE event.
    pub max_event_bytes: usize,
    pub access_log: AccessLog,
    /// The admin API's bearer secret; without one the key and team endpoints are off.
    pub master_key: Option<Secret>,
    /// `/metrics` needs the master key too (`server.metrics_auth: master_key`).
    pub metrics_auth: bool,
    /// A budget applies and the target's price is unknown: refuse (true) or serve and record
    /// a null cost (`server.on_unknown_price: reject | allow`).
    pub reject_unknown_price: bool,
    /// Raw spend-ledger rows kept this many days (rollups forever).
    pub ledger_retention_days: u32,
    /// `server.ledger: on | off`; unset: on with a store file, off in memory (where a day of
    /// rows at full rate would not fit).
    pub ledger: Option<bool>,
    /// Where soft-budget alerts are POSTed (`server.alert_webhook: http://…`).
    pub alert_webhook: Option<String>,
    /// Budget days and months begin at midnight this many minutes from UTC
    /// (`server.budget_timezone: UTC | +05:30 | -08:00`).
    pub budget_offset_min: i32,
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
    /// Index into `Snapshot::origins` (the built-in mock's is the local one).
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
    /// Cloud region (Bedrock `us-east-1`, Vertex `us-east5`).
    pub region: Option<String>,
    /// Cloud project (Vertex).
    pub project: Option<String>,
    /// AWS credentials a Bedrock provider signs with (SigV4).
    pub aws: Option<AwsKeys>,
    /// An access token control keeps fresh (Vertex with a service account); read per request.
    pub token: Option<std::sync::Arc<Token>>,
}

/// AWS credentials, resolved at load time.
#[derive(Debug, Clone)]
pub struct AwsKeys {
    pub access_key_id: Secret,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// A bearer token that changes while the gateway runs: control writes a fresh one before the
/// old one expires, shards read it for each request (a read lock, uncontended but for the
/// write once an hour).
#[derive(Default)]
pub struct Token {
    value: std::sync::RwLock<Option<std::sync::Arc<str>>>,
    /// Why the last attempt to get one failed, while none has been got.
    problem: std::sync::Mutex<Option<String>>,
}

impl Token {
    /// A token that never changes (`access_token: { env: … }`).
    pub fn fixed(value: &str) -> Token {
        let t = Token::default();
        t.set(value.into());
        t
    }

    pub fn get(&self) -> Option<std::sync::Arc<str>> {
        self.value.read().ok()?.clone()
    }

    pub fn set(&self, value: std::sync::Arc<str>) {
        if let Ok(mut v) = self.value.write() {
            *v = Some(value);
        }
        if let Ok(mut p) = self.problem.lock() {
            *p = None;
        }
    }

    /// Records why no token could be got (kept only while there is none to use).
    pub fn fail(&self, why: String) {
        if let Ok(mut p) = self.problem.lock() {
            *p = Some(why);
        }
    }

    /// Why there is no token yet, for an error message.
    pub fn problem(&self) -> String {
        self.problem
            .lock()
            .ok()
            .and_then(|p| p.clone())
            .unwrap_or_else(|| "the first access token is still being fetched".into())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ready = self.get().is_some();
        write!(f, "Token(ready: {ready})")
    }
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
    /// Answered in process by the local transport (the built-in mock), not over a socket.
    pub local: bool,
}

impl Origin {
    /// The in-process origin the built-in mock's requests go to.
    pub fn local() -> Origin {
        Origin {
            tls: false,
            host: "mock".into(),
            port: 0,
            authority: "mock".into(),
            ca_file: None,
            max_idle: 1024,
            idle_timeout: Duration::from_secs(3600),
            local: true,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

/// `max_output_tokens` of an alias that sets none.
pub const DEFAULT_OUTPUT_BOUND: u64 = 4096;

/// A model alias: the name clients ask for, and how to turn it into upstream attempts. The
/// route fields are described in [`routes`] (config) and used by [`crate::routing`].
#[derive(Debug)]
pub struct Model {
    pub alias: String,
    /// At most [`crate::routing::MAX_TARGETS`], names unique within the alias.
    pub targets: Vec<Target>,
    pub strategy: Strategy,
    /// Aliases (indices into `Snapshot::models`) to try in order when every target failed.
    pub fallbacks: Vec<usize>,
    pub fallback_on: FallbackOn,
    pub retry: RetryPolicy,
    pub timeouts: RouteTimeouts,
    /// How long a whole request for this alias may take, retries, backoff and fallbacks
    /// included: `timeouts.total`, else the slowest of its providers' totals.
    pub request_timeout: Duration,
    pub breaker: BreakerPolicy,
    /// Hedging, when configured.
    pub hedge: Option<HedgePolicy>,
    /// Active health checks of the targets, when configured.
    pub health: Option<HealthPolicy>,
    /// The alias's own limits (`limits:`).
    pub limits: AliasLimits,
    /// Completion tokens a request is assumed to produce when it sets no `max_tokens` (token
    /// limits and budgets reserve this much; `max_output_tokens:`).
    pub output_bound: u64,
    /// Evaluated in order; the first match restricts the eligible targets.
    pub rules: Vec<Rule>,
    /// The response cache, when on for this alias (`cache:`).
    pub cache: Option<cache::CacheRule>,
    /// Guardrail policies (indices into `Snapshot::guardrails`), in the order listed.
    pub guardrails: Vec<u16>,
    /// The cache key's hash of the alias and its target group, made on first use
    /// (`crate::cache::key::group`).
    pub cache_group: std::sync::OnceLock<u128>,
}

impl Model {
    /// An alias with the given targets and every route setting at its default.
    pub fn new(alias: impl Into<String>, targets: Vec<Target>) -> Model {
        Model {
            alias: alias.into(),
            targets,
            strategy: Strategy::default(),
            fallbacks: Vec::new(),
            fallback_on: FallbackOn::default(),
            retry: RetryPolicy::default(),
            timeouts: RouteTimeouts::default(),
            request_timeout: Timeouts::default().total,
            breaker: BreakerPolicy::default(),
            hedge: None,
            health: None,
            limits: AliasLimits::default(),
            output_bound: DEFAULT_OUTPUT_BOUND,
            rules: Vec::new(),
            cache: None,
            guardrails: Vec::new(),
            cache_group: std::sync::OnceLock::new(),
        }
    }

    /// The alias to switch to for an error of this kind, before the general `fallbacks`.
    pub fn fallback_for(&self, kind: crate::error::Kind) -> Option<usize> {
        use crate::error::Kind;
        match kind {
            Kind::UpstreamContextWindow => self.fallback_on.context_window,
            Kind::UpstreamContentPolicy => self.fallback_on.content_policy,
            _ => None,
        }
    }

    /// The provider's timeouts with this alias's overrides applied.
    pub fn timeouts_for(&self, provider: &Provider) -> Timeouts {
        Timeouts {
            connect: provider.timeouts.connect,
            first_byte: self
                .timeouts
                .first_byte
                .unwrap_or(provider.timeouts.first_byte),
            total: self.timeouts.total.unwrap_or(provider.timeouts.total),
        }
    }
}

/// One deployment behind an alias: a provider, its model name, and how to treat it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Index into `Snapshot::providers`.
    pub provider: usize,
    /// The upstream model name.
    pub model: String,
    /// Unique within the alias; `provider/model` unless configured. Rules name targets by it.
    pub name: String,
    /// Share of traffic (weighted) or capacity (least-busy, least-latency); at least 1.
    pub weight: u32,
    /// In-flight requests per shard beyond which the target is skipped.
    pub max_concurrent: Option<u32>,
    /// Credentials of this target, replacing the provider's.
    pub api_key: Option<Secret>,
    /// The configured price, else the shipped table's for `model`, else unknown.
    pub price: Option<crate::routing::Price>,
}

impl Target {
    /// The credentials this target is sent with: its own, else its provider's.
    pub fn api_key<'a>(&'a self, provider: &'a Provider) -> Option<&'a Secret> {
        self.api_key.as_ref().or(provider.api_key.as_ref())
    }

    /// A target with weight 1, no limit, the provider's credentials and the shipped price.
    pub fn new(provider: usize, provider_name: &str, model: impl Into<String>) -> Target {
        let model = model.into();
        Target {
            provider,
            name: format!("{provider_name}/{model}"),
            price: crate::routing::price::lookup(&model),
            model,
            weight: 1,
            max_concurrent: None,
            api_key: None,
        }
    }
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
    let mut snap = parse::parse(text, env)?;
    snap.labels = Labels::assign(&snap, None);
    Ok(snap)
}

/// Reads a config file (or the embedded default when `path` is `None`) with the process environment.
pub fn load(path: Option<&std::path::Path>) -> Result<Snapshot, Problems> {
    let text = match path {
        None => EMBEDDED_DEFAULT.to_owned(),
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| Problems(vec![format!("{}: cannot read: {e}", p.display())]))?,
    };
    // A value that is not UTF-8 keeps its place (as U+FFFD) so the secret check can say
    // "non-ASCII byte at offset N" instead of calling the variable unset.
    load_str(&text, &|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    })
}

#[cfg(test)]
mod tests;
