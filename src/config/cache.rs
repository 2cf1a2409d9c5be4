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
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 << 20,
            max_entry_bytes: 1 << 20,
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
}

impl Default for CacheRule {
    fn default() -> Self {
        CacheRule {
            ttl: Duration::from_secs(3600),
            scope: Scope::Key,
            store_length: false,
        }
    }
}

impl Walker<'_> {
    pub(super) fn cache_config(&mut self, y: &Yaml) -> CacheConfig {
        let mut c = CacheConfig::default();
        let Some(h) = self.mapping(y, "cache", &["max_bytes", "max_entry_bytes"]) else {
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
        let h = self.mapping(y, path, &["ttl_s", "scope", "store_length"])?;
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
        Some(r)
    }
}
