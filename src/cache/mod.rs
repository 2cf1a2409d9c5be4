//! The response cache: answers to repeated requests served from the shard's memory instead of
//! the upstream. Each shard keeps its own store ([`store::Store`], LRU within
//! `cache.max_bytes`); nothing is shared across cores, so a hit on one shard is a miss on
//! another until that shard has seen the question too.
//!
//! A request on an alias with `cache:` on is keyed ([`key`]) by its body in canonical form,
//! the alias and its target group, the client's protocol, a client namespace, and the tenant
//! (the key, the key's team, or nobody when the alias says `scope: shared`). Only complete,
//! successful answers are served back ([`replay::read`]); a hit reports zero usage and
//! records no spend.
//!
//! Per request: `Cache-Control: no-cache` (or the body's `cache: {"no-cache": true}`) skips
//! the read, `no-store` the write, `max-age=N` refuses older answers; the body's `ttl`
//! shortens how long this answer is kept and `namespace` partitions the key.

pub mod key;
pub mod replay;
pub mod semantic;
pub mod store;

use std::cell::RefCell;
use std::rc::Rc;

use crate::config::cache::{CacheRule, Scope};
pub use store::{Entry, Miss, Purge, Store};

/// A request's cache directives, from `Cache-Control` and the body's `cache` member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub no_cache: bool,
    pub no_store: bool,
    /// Refuse a stored answer older than this.
    pub max_age_s: Option<u64>,
    /// Keep this answer at most this long (never past the alias's `ttl_s`).
    pub ttl_s: Option<u64>,
    pub namespace: Option<Box<str>>,
    /// A semantic match must be at least this similar, in millionths (raises the alias's
    /// threshold, never lowers it).
    pub threshold_ppm: Option<u32>,
}

impl Directives {
    /// The similarity a semantic match needs: the alias's, or the request's if higher.
    pub fn threshold(&self, alias: f32) -> f32 {
        self.threshold_ppm
            .map_or(alias, |t| (t as f32 / 1e6).max(alias))
    }
}

impl Directives {
    /// Folds in a `Cache-Control` header's value (`no-cache, no-store, max-age=60`).
    pub fn header(&mut self, v: &[u8]) {
        for part in v.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let (name, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], Some(part[i + 1..].trim_ascii())),
                None => (part, None),
            };
            let seconds = || {
                let v = value?;
                let v = v.strip_prefix(b"\"").unwrap_or(v);
                let v = v.strip_suffix(b"\"").unwrap_or(v);
                std::str::from_utf8(v).ok()?.parse::<u64>().ok()
            };
            if name.eq_ignore_ascii_case(b"no-cache") {
                self.no_cache = true;
            } else if name.eq_ignore_ascii_case(b"no-store") {
                self.no_store = true;
            } else if (name.eq_ignore_ascii_case(b"max-age")
                || name.eq_ignore_ascii_case(b"s-maxage"))
                && let Some(s) = seconds()
            {
                self.max_age_s = Some(self.max_age_s.map_or(s, |m| m.min(s)));
            }
        }
    }
}

/// What the cache did for a request: the `x-shardgate-cache` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Hit = 0,
    Miss = 1,
    /// Not read: off for the alias, not a cacheable request, or the client said `no-cache`.
    Bypass = 2,
    /// Served the answer of an earlier question close enough to this one (semantic cache).
    SemanticHit = 3,
}

impl Status {
    pub fn header(self) -> &'static str {
        match self {
            Status::Hit => "HIT",
            Status::Miss => "MISS",
            Status::Bypass => "BYPASS",
            Status::SemanticHit => "SEMANTIC_HIT",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Hit => "hit",
            Status::Miss => "miss",
            Status::Bypass => "bypass",
            Status::SemanticHit => "semantic_hit",
        }
    }
}

/// An answer to store once it has reached the client whole: where, and what it recorded.
/// Who it belongs to (alias, tenant, key) is named only when it is stored ([`Cache::put`]),
/// so a miss that is never kept allocates no names.
#[derive(Debug)]
pub struct Fill {
    pub key: u128,
    pub ttl_ms: i64,
    /// A stream as the client received it (a whole answer is stored as it is sent, see
    /// [`Cache::put`]), and whether the answer was streamed.
    pub bytes: Vec<u8>,
    pub streamed: bool,
    /// Past `max_entry_bytes`: the answer is served but not kept.
    pub too_large: bool,
    /// The question's place in the semantic index, when the alias's cache is semantic: its
    /// scope and embedding.
    pub semantic: Option<Box<(u128, Vec<f32>)>>,
}

impl Fill {
    /// Appends part of a streamed answer, up to `max` bytes in all.
    pub fn record(&mut self, bytes: &[u8], max: usize) {
        if self.too_large {
            return;
        }
        if self.bytes.len() + bytes.len() > max {
            self.too_large = true;
            self.bytes = Vec::new();
            return;
        }
        self.bytes.extend_from_slice(bytes);
    }
}

/// Whose a stored answer is: the alias and protocol it answers, its tenant, and the key
/// whose request stored it.
#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub alias: &'a str,
    pub wire: crate::providers::translate::Wire,
    pub tenant: Tenant<'a>,
    pub key_id: &'a str,
}

/// Whose answers a request may be served: `k:<key id>`, `t:<team>`, or nobody's in
/// particular (shared). Compared and hashed in its two parts, so a lookup allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant<'a> {
    pub kind: &'static str,
    pub name: &'a str,
}

impl Tenant<'_> {
    /// Whether a stored entry's tenant (`kind` then `name`) is this one.
    pub fn is(&self, stored: &str) -> bool {
        stored.len() == self.kind.len() + self.name.len()
            && stored.starts_with(self.kind)
            && stored.ends_with(self.name)
    }

    pub fn to_boxed(self) -> Box<str> {
        [self.kind, self.name].concat().into()
    }
}

/// The tenant of a request by key `key_id` (of `team`, if any) under `scope`.
pub fn tenant<'a>(scope: Scope, key_id: &'a str, team: Option<&'a str>) -> Tenant<'a> {
    let (kind, name) = match (scope, team) {
        (Scope::Shared, _) => ("", ""),
        (Scope::Team, Some(t)) => ("t:", t),
        (Scope::Team, None) | (Scope::Key, _) => ("k:", key_id),
    };
    Tenant { kind, name }
}

/// One shard's cache: its store and counters.
pub struct Cache {
    store: RefCell<Store>,
    /// The semantic index, made on first use (most shards' aliases never ask for it).
    semantic: RefCell<Option<semantic::Index>>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            store: RefCell::new(Store::new()),
            semantic: RefCell::new(None),
        }
    }
}

/// A lookup's result.
pub enum Found {
    Hit(replay::Answer),
    Miss,
}

impl Cache {
    /// Looks `key` up for `alias` and `tenant`; an entry that cannot be served is dropped.
    pub fn get(
        &self,
        key: u128,
        alias: &str,
        tenant: Tenant<'_>,
        now_ms: i64,
        max_age_s: Option<u64>,
        rule: &CacheRule,
    ) -> Found {
        let max_age_ms = max_age_s.map(|s| s.saturating_mul(1000).min(i64::MAX as u64) as i64);
        let entry: Rc<Entry> = match self
            .store
            .borrow_mut()
            .get(key, alias, tenant, now_ms, max_age_ms)
        {
            Ok(e) => e,
            Err(_) => return Found::Miss,
        };
        match replay::read(&entry, rule.store_length) {
            Some(a) => Found::Hit(a),
            None => {
                self.store.borrow_mut().remove(key);
                Found::Miss
            }
        }
    }

    /// The stored answer nearest to `vector` in `scope` at `threshold` or above, if any.
    pub fn nearest(
        &self,
        scope: u128,
        vector: &[f32],
        threshold: f32,
        now_ms: i64,
    ) -> Option<u128> {
        let mut index = self.semantic.borrow_mut();
        let (answer, _) = index.as_mut()?.nearest(scope, vector, threshold, now_ms)?;
        if self.store.borrow().contains(answer) {
            return Some(answer);
        }
        // Its answer was evicted or purged: the question goes too.
        index.as_mut()?.remove(answer);
        None
    }

    /// Stores an answer for its owner (and its question in the semantic index, when it has
    /// one): `whole`, a whole answer as sent, or else the stream `f` recorded. Nothing is
    /// copied for an answer the budget could not hold.
    pub fn put(
        &self,
        f: Fill,
        whole: Option<&[u8]>,
        owner: Owner<'_>,
        now_ms: i64,
        c: &crate::config::cache::CacheConfig,
    ) {
        let len = whole.map_or(f.bytes.len(), <[u8]>::len);
        if f.too_large || len == 0 || len > c.max_entry_bytes.min(c.max_bytes) {
            return;
        }
        let expires_ms = now_ms.saturating_add(f.ttl_ms);
        if let Some((scope, vector)) = f.semantic.as_deref()
            && c.semantic_max_entries > 0
        {
            self.semantic
                .borrow_mut()
                .get_or_insert_with(|| semantic::Index::new(c.semantic_max_entries))
                .insert(*scope, vector, f.key, expires_ms);
        }
        let entry = Entry {
            key: f.key,
            alias: owner.alias.into(),
            tenant: owner.tenant.to_boxed(),
            key_id: owner.key_id.into(),
            stored_ms: now_ms,
            expires_ms,
            wire: owner.wire,
            streamed: whole.is_none() && f.streamed,
            bytes: whole.map_or_else(|| f.bytes.into_boxed_slice(), Box::from),
        };
        self.store.borrow_mut().put(entry, c.max_bytes);
    }

    pub fn purge(&self, p: &Purge) -> u64 {
        let n = self.store.borrow_mut().purge(p);
        if let Some(index) = self.semantic.borrow_mut().as_mut() {
            let store = self.store.borrow();
            index.purge(|a| !store.contains(a));
        }
        n
    }

    /// (entries, bytes, evictions so far), for the metrics.
    pub fn stats(&self) -> (u64, u64, u64) {
        let s = self.store.borrow();
        (s.len() as u64, s.bytes() as u64, s.evictions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_read_as_written() {
        let mut d = Directives::default();
        d.header(b"No-Cache, max-age=60 , s-maxage=\"30\", private");
        assert!(d.no_cache && !d.no_store);
        assert_eq!(d.max_age_s, Some(30));
        let mut d = Directives::default();
        d.header(b"no-store");
        assert!(d.no_store && !d.no_cache);
        d.header(b"max-age=x");
        assert_eq!(d.max_age_s, None);
    }

    #[test]
    fn only_answers_within_the_entry_limit_are_kept() {
        let c = crate::config::cache::CacheConfig {
            max_entry_bytes: 100,
            ..Default::default()
        };
        let fill = |key| Fill {
            key,
            ttl_ms: 60_000,
            bytes: Vec::new(),
            streamed: false,
            too_large: false,
            semantic: None,
        };
        let owner = Owner {
            alias: "gpt",
            wire: crate::providers::translate::Wire::OpenAi,
            tenant: tenant(Scope::Key, "k1", None),
            key_id: "k1",
        };
        let cache = Cache::default();
        // A whole answer, as sent: kept up to the limit, not past it, never empty.
        cache.put(fill(1), Some(&[b'x'; 100]), owner, 0, &c);
        cache.put(fill(2), Some(&[b'x'; 101]), owner, 0, &c);
        cache.put(fill(3), Some(b""), owner, 0, &c);
        assert_eq!(cache.stats().0, 1);
        // A stream, as recorded piece by piece: past the limit it is dropped whole.
        let mut f = fill(4);
        f.record(&[b'x'; 60], c.max_entry_bytes);
        f.record(&[b'x'; 60], c.max_entry_bytes);
        assert!(f.too_large && f.bytes.is_empty());
        cache.put(f, None, owner, 0, &c);
        let mut f = fill(5);
        f.record(&[b'x'; 60], c.max_entry_bytes);
        f.streamed = true;
        cache.put(f, None, owner, 0, &c);
        assert_eq!(cache.stats().0, 2);
        // A budget smaller than the answer keeps nothing (and copies nothing).
        let tight = crate::config::cache::CacheConfig { max_bytes: 50, ..c };
        let small = Cache::default();
        small.put(fill(6), Some(&[b'x'; 60]), owner, 0, &tight);
        assert_eq!(small.stats().0, 0);
    }

    #[test]
    fn tenants_follow_the_scope() {
        let s = |t: Tenant<'_>| t.to_boxed().to_string();
        assert_eq!(s(tenant(Scope::Key, "a", Some("t1"))), "k:a");
        assert_eq!(s(tenant(Scope::Team, "a", Some("t1"))), "t:t1");
        assert_eq!(s(tenant(Scope::Team, "a", None)), "k:a");
        assert_eq!(s(tenant(Scope::Shared, "a", Some("t1"))), "");
        let t = tenant(Scope::Key, "ab", None);
        assert!(t.is("k:ab") && !t.is("k:abc") && !t.is("t:ab") && !t.is("k:a"));
    }
}
