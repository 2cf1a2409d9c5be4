//! Virtual keys: who is calling, which model aliases they may use, which guardrail policies
//! their requests run, and whether the response cache may serve them.
//!
//! The control thread builds one [`KeyTable`] from the config file's keys and the store's, and
//! publishes it to every shard apart from the config generation, so a key change never
//! rebuilds routing. A request takes the shard's current table once and keeps it to its end.
//!
//! Keys are kept only as SHA-256 hashes. A presented key is hashed, the candidate is found by
//! hash, and the match is confirmed with a constant-time comparison of the two digests, so
//! neither the lookup nor the comparison leaks how much of a key was right. Blocked and
//! expired keys stay in the table so the caller learns why it was refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{GatewayError, Kind};

/// The caller a request runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal {
    /// The table is open (no keys anywhere, no master key): said loudly at start.
    Anonymous,
    /// An entry of the table the request took.
    Key(u32),
}

pub type Digest = [u8; 32];

/// SHA-256 of a key secret: how keys are stored and looked up.
pub fn digest(key: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn constant_time_eq(a: &Digest, b: &Digest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// One key as control describes it (from the config file or the store).
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Stable id: the store's `key_…`, or `config:<name>`.
    pub id: String,
    /// Shown in the access log: the alias, else the id.
    pub name: String,
    pub team: Option<String>,
    pub hash: Digest,
    /// A rotated-out secret that still works until this unix time (ms).
    pub previous: Option<(Digest, i64)>,
    /// Aliases the key may use; `None`: all.
    pub models: Option<Vec<String>>,
    /// Aliases its team may use; `None`: all.
    pub team_models: Option<Vec<String>>,
    pub expires_ms: Option<i64>,
    pub blocked: bool,
    pub team_blocked: bool,
    /// Last use, unix seconds (carried from the store or the previous table).
    pub last_used_s: u64,
    /// The key's and its team's limits (pool slots built by control).
    pub limits: Vec<crate::limits::Limit>,
    /// Limits of this key on one alias (`model_rpm_limit`, `model_tpm_limit`).
    pub alias_limits: Vec<(String, crate::limits::Limit)>,
    /// The number the spend ledger knows this key and its team by (control's
    /// `KeyNumbers`); [`NO_NUMBER`] outside a control thread.
    pub number: u32,
    /// Guardrail policy names set on the key, and on its team (not checked against the
    /// config here: the request path resolves them).
    pub guardrails: Vec<String>,
    pub team_guardrails: Vec<String>,
    pub cache: KeyCache,
}

/// A key's own say over the response cache.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum KeyCache {
    /// The alias's rule decides (and a key never set otherwise).
    #[default]
    Follow,
    /// This key's requests are never cached.
    Off,
    /// Cached by this rule (never [`Scope::Shared`](crate::config::cache::Scope::Shared):
    /// sharing across tenants is the alias's choice).
    On(crate::config::cache::CacheRule),
}

/// A key without a ledger number (numbers start at 1).
pub const NO_NUMBER: u32 = 0;

#[derive(Debug)]
pub struct KeyEntry {
    pub id: Box<str>,
    /// See [`KeySpec::number`].
    pub number: u32,
    pub name: Box<str>,
    pub team: Option<Box<str>>,
    models: Option<Box<[Box<str>]>>,
    team_models: Option<Box<[Box<str>]>>,
    expires_ms: Option<i64>,
    blocked: bool,
    team_blocked: bool,
    /// Unix seconds of the last successful authentication; written at most once a second
    /// per shard (a relaxed load first), read by control to persist it.
    last_used: AtomicU64,
    limits: Box<[crate::limits::Limit]>,
    alias_limits: Box<[(Box<str>, crate::limits::Limit)]>,
    /// The key's guardrail policy names, then its team's, each once; empty (no allocation)
    /// when neither has any.
    pub guardrails: Box<[Box<str>]>,
    pub cache: KeyCache,
}

impl KeyEntry {
    fn allows(list: &Option<Box<[Box<str>]>>, alias: &str) -> bool {
        list.as_ref()
            .is_none_or(|l| l.iter().any(|m| &**m == alias))
    }

    pub fn may_use(&self, alias: &str) -> bool {
        Self::allows(&self.models, alias) && Self::allows(&self.team_models, alias)
    }

    pub fn last_used_s(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// The key's and its team's own limits.
    pub fn limits(&self) -> &[crate::limits::Limit] {
        &self.limits
    }

    /// The key's limits on `alias`.
    pub fn alias_limits<'a>(
        &'a self,
        alias: &'a str,
    ) -> impl Iterator<Item = &'a crate::limits::Limit> + Clone + 'a {
        self.alias_limits
            .iter()
            .filter(move |(a, _)| &**a == alias)
            .map(|(_, l)| l)
    }

    /// Whether any limit of the key applies to some request (the fast path skips the rest).
    pub fn has_limits(&self) -> bool {
        !self.limits.is_empty() || !self.alias_limits.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    entry: u32,
    /// For a rotated-out secret: until when (unix ms) it still works.
    until_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub struct KeyTable {
    entries: Vec<KeyEntry>,
    by_hash: HashMap<Digest, Slot>,
    open: bool,
}

impl KeyTable {
    /// A table of `specs`; `open` (no key anywhere and no master key) admits every request.
    /// Specs whose secret collides with an earlier one are left out and named in the result.
    pub fn build(specs: Vec<KeySpec>, open: bool) -> (KeyTable, Vec<String>) {
        let mut t = KeyTable {
            entries: Vec::with_capacity(specs.len()),
            by_hash: HashMap::with_capacity(specs.len()),
            open: open && specs.is_empty(),
        };
        let mut refused = Vec::new();
        for s in specs {
            if t.by_hash.contains_key(&s.hash) {
                refused.push(s.id);
                continue;
            }
            let entry = t.entries.len() as u32;
            t.by_hash.insert(
                s.hash,
                Slot {
                    entry,
                    until_ms: None,
                },
            );
            if let Some((old, until)) = s.previous
                && !t.by_hash.contains_key(&old)
            {
                t.by_hash.insert(
                    old,
                    Slot {
                        entry,
                        until_ms: Some(until),
                    },
                );
            }
            let boxed = |l: Option<Vec<String>>| {
                l.map(|l| l.into_iter().map(String::into_boxed_str).collect())
            };
            t.entries.push(KeyEntry {
                id: s.id.into(),
                number: s.number,
                name: s.name.into(),
                team: s.team.map(String::into_boxed_str),
                models: boxed(s.models),
                team_models: boxed(s.team_models),
                expires_ms: s.expires_ms,
                blocked: s.blocked,
                team_blocked: s.team_blocked,
                last_used: AtomicU64::new(s.last_used_s),
                limits: s.limits.into_boxed_slice(),
                alias_limits: s
                    .alias_limits
                    .into_iter()
                    .map(|(a, l)| (a.into_boxed_str(), l))
                    .collect(),
                guardrails: merged(s.guardrails, s.team_guardrails),
                cache: s.cache,
            });
        }
        (t, refused)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn entries(&self) -> &[KeyEntry] {
        &self.entries
    }

    /// Resolves a presented key (from `Authorization: Bearer` or `x-api-key`) at `now_ms`.
    pub fn authenticate(
        &self,
        presented: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<Principal, GatewayError> {
        if self.open {
            return Ok(Principal::Anonymous);
        }
        let refuse = |msg: &str| Err(GatewayError::new(Kind::Unauthorized, msg.to_owned()));
        let Some(key) = presented.filter(|k| !k.is_empty()) else {
            return refuse("missing API key: send Authorization: Bearer <key> or x-api-key");
        };
        let d = digest(key);
        let slot = match self.by_hash.get_key_value(&d) {
            Some((stored, slot)) if constant_time_eq(stored, &d) => *slot,
            _ => return refuse("invalid API key"),
        };
        let e = &self.entries[slot.entry as usize];
        if slot.until_ms.is_some_and(|until| now_ms >= until) {
            return refuse("invalid API key: it was rotated and its grace period is over");
        }
        if e.blocked {
            return refuse("this API key is blocked");
        }
        if e.team_blocked {
            return Err(GatewayError::new(
                Kind::Unauthorized,
                format!(
                    "this API key's team {:?} is blocked",
                    e.team.as_deref().unwrap_or("")
                ),
            ));
        }
        if let Some(at) = e.expires_ms.filter(|&at| now_ms >= at) {
            return Err(GatewayError::new(
                Kind::Unauthorized,
                format!(
                    "this API key expired at {}",
                    crate::observe::time::iso8601(at)
                ),
            ));
        }
        let now_s = (now_ms / 1000).max(0) as u64;
        if e.last_used.load(Ordering::Relaxed) < now_s {
            e.last_used.store(now_s, Ordering::Relaxed);
        }
        Ok(Principal::Key(slot.entry))
    }

    pub fn entry(&self, who: Principal) -> Option<&KeyEntry> {
        match who {
            Principal::Anonymous => None,
            Principal::Key(i) => self.entries.get(i as usize),
        }
    }

    pub fn may_use(&self, who: Principal, alias: &str) -> bool {
        self.entry(who).is_none_or(|e| e.may_use(alias))
    }

    pub fn name(&self, who: Principal) -> &str {
        self.entry(who).map_or("anonymous", |e| &e.name)
    }

    pub fn team(&self, who: Principal) -> Option<&str> {
        self.entry(who).and_then(|e| e.team.as_deref())
    }
}

/// `own` then `team`, each name once, in that order.
fn merged(own: Vec<String>, team: Vec<String>) -> Box<[Box<str>]> {
    let mut out: Vec<Box<str>> = Vec::with_capacity(own.len() + team.len());
    for name in own.into_iter().chain(team) {
        if !out.iter().any(|n| **n == *name) {
            out.push(name.into_boxed_str());
        }
    }
    out.into_boxed_slice()
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests;
