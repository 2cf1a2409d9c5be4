//! The response cache's config: the per-shard byte budget (top-level `cache:`) and an alias's
//! rule (`models.<alias>.cache:`). Checked here; the cache itself is `crate::cache`.

use std::time::Duration;

use yaml_rust2::Yaml;

use super::parse::{Walker, get, join};

/// Top-level `cache:`: what every shard may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Bytes of stored answers one shard keeps at most (least recently used go first).
    pub max_bytes: usize,
    /// The largest single answer stored; a larger one is served but not kept.
    pub max_entry_bytes: usize,
    /// Questions one shard's semantic index remembers at most (least recently used go first).
    pub semantic_max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
            semantic_max_entries: 10_000,
        }
    }
}

/// Whose requests may share an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the same key's (the default).
    Key,
    /// Every key of one team (a key without a team is its own).
    Team,
    /// Every caller of the alias: only where its answers are the same for everyone.
    Shared,
}

/// `models.<alias>.cache:`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRule {
    /// How long an answer may be served after it was stored.
    pub ttl: Duration,
    pub scope: Scope,
    /// Whether an answer cut at `max_tokens` (finish `length`) is stored too.
    pub store_length: bool,
    /// The semantic cache, when on (`semantic:`).
    pub semantic: Option<Semantic>,
}

/// `models.<alias>.cache.semantic:`: a question close enough to an earlier one in the same
/// context gets its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Semantic {
    /// The gateway's own alias the last user turn is embedded with.
    pub embeddings: String,
    /// Cosine similarity at least this (a request may raise it, never lower it).
    pub threshold: f32,
    /// The embedding call's deadline; past it the request goes on without the semantic cache.
    pub timeout: Duration,
    /// `dimensions` asked of the embeddings model, if set.
    pub dimensions: Option<u64>,
}

impl Default for CacheRule {
    fn default() -> Self {
        CacheRule {
            ttl: Duration::from_secs(3600),
            scope: Scope::Key,
            store_length: false,
            semantic: None,
        }
    }
}

impl Walker<'_> {
    pub(super) fn cache_config(&mut self, y: &Yaml) -> CacheConfig {
        let mut c = CacheConfig::default();
        let Some(h) = self.mapping(
            y,
            "cache",
            &["max_bytes", "max_entry_bytes", "semantic_max_entries"],
        ) else {
            return c;
        };
        if let Some(n) = get(h, "max_bytes").and_then(|y| self.uint(y, "cache.max_bytes", 0)) {
            c.max_bytes = n as usize;
        }
        if let Some(n) =
            get(h, "max_entry_bytes").and_then(|y| self.uint(y, "cache.max_entry_bytes", 1024))
        {
            c.max_entry_bytes = n as usize;
        }
        if let Some(n) = get(h, "semantic_max_entries")
            .and_then(|y| self.uint(y, "cache.semantic_max_entries", 0))
        {
            c.semantic_max_entries = n as usize;
        }
        c
    }

    pub(super) fn cache_rule(&mut self, y: &Yaml, path: &str) -> Option<CacheRule> {
        if matches!(y, Yaml::Boolean(false)) {
            return None;
        }
        let mut r = CacheRule::default();
        if matches!(y, Yaml::Boolean(true)) {
            return Some(r);
        }
        let h = self.mapping(y, path, &["ttl_s", "scope", "store_length", "semantic"])?;
        if let Some(n) = get(h, "ttl_s").and_then(|y| self.uint(y, &join(path, "ttl_s"), 1)) {
            r.ttl = Duration::from_secs(n);
        }
        if let Some(y) = get(h, "scope") {
            let sp = join(path, "scope");
            match self.string(y, &sp).as_deref() {
                Some("key") => r.scope = Scope::Key,
                Some("team") => r.scope = Scope::Team,
                Some("shared") => r.scope = Scope::Shared,
                Some(other) => self.problem(
                    &sp,
                    format_args!("expected `key`, `team` or `shared`, found {other:?}"),
                ),
                None => {}
            }
        }
        match get(h, "store_length") {
            None => {}
            Some(Yaml::Boolean(b)) => r.store_length = *b,
            Some(_) => self.problem(&join(path, "store_length"), "expected true or false"),
        }
        if let Some(y) = get(h, "semantic") {
            r.semantic = self.semantic(y, &join(path, "semantic"));
        }
        Some(r)
    }

    fn semantic(&mut self, y: &Yaml, path: &str) -> Option<Semantic> {
        let h = self.mapping(
            y,
            path,
            &["embeddings", "threshold", "timeout_ms", "dimensions"],
        )?;
        let Some(e) = get(h, "embeddings") else {
            self.problem(
                &join(path, "embeddings"),
                "missing (the alias to embed with)",
            );
            return None;
        };
        let embeddings = self.string(e, &join(path, "embeddings"))?;
        let mut threshold = 0.95f32;
        if let Some(y) = get(h, "threshold") {
            let tp = join(path, "threshold");
            match y {
                Yaml::Real(r) => match r.parse::<f32>() {
                    Ok(t) if t > 0.0 && t <= 1.0 => threshold = t,
                    _ => self.problem(&tp, format_args!("must be in (0, 1], found {r}")),
                },
                Yaml::Integer(1) => threshold = 1.0,
                _ => self.problem(&tp, "expected a number in (0, 1]"),
            }
        }
        let timeout = self.millis(h, "timeout_ms", path, Duration::from_millis(500));
        let dimensions =
            get(h, "dimensions").and_then(|y| self.uint(y, &join(path, "dimensions"), 1));
        Some(Semantic {
            embeddings,
            threshold,
            timeout,
            dimensions,
        })
    }
}
