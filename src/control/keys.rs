//! The key table shards authenticate against, built from the config file's keys (read-only,
//! ids `config:<name>`) and the store's, and the numbers the spend ledger knows keys by.

use std::collections::HashMap;
use std::sync::Arc;

use super::slots::Slots;
use crate::auth::{KeySpec, KeyTable};
use crate::config::Snapshot;
use crate::limits::Scope;
use crate::store::{Store, StoreError};

/// A fresh table; last-used times carry over from `previous` (they are written to the store
/// only every few seconds).
pub fn table(
    config: &Snapshot,
    store: &Store,
    previous: Option<&KeyTable>,
    slots: &mut Slots,
    numbers: &mut KeyNumbers,
) -> Result<Arc<KeyTable>, StoreError> {
    let mut specs: Vec<KeySpec> = config
        .keys
        .iter()
        .map(|k| {
            let owner = format!("config:{}", k.name);
            KeySpec {
                limits: slots.of(&owner, Scope::Key, &k.name, &k.limits),
                alias_limits: slots.per_alias(&owner, &k.name, &k.limits),
                id: owner,
                name: k.name.clone(),
                hash: k.hash,
                models: k.models.clone(),
                ..KeySpec::default()
            }
        })
        .collect();
    let listed = |v: Vec<String>| (!v.is_empty()).then_some(v);
    for r in store.key_records()? {
        let name = r.alias.clone().unwrap_or_else(|| r.id.clone());
        let owner = format!("key:{}", r.id);
        let mut limits = slots.of(&owner, Scope::Key, &name, &r.limits);
        if let (Some(team), Some(tl)) = (&r.team_id, &r.team_limits) {
            limits.extend(slots.of(&format!("team:{team}"), Scope::Team, team, tl));
        }
        specs.push(KeySpec {
            limits,
            alias_limits: slots.per_alias(&owner, &name, &r.limits),
            name,
            team: r.team_id,
            hash: r.hash,
            previous: r.previous,
            models: listed(r.models),
            team_models: listed(r.team_models),
            expires_ms: r.expires_ms,
            blocked: r.blocked,
            team_blocked: r.team_blocked,
            last_used_s: 0,
            number: crate::auth::NO_NUMBER,
            guardrails: r.guardrails,
            team_guardrails: r.team_guardrails,
            cache: r.cache.key_cache(),
            id: r.id,
        });
    }
    if let Some(prev) = previous {
        let seen: std::collections::HashMap<&str, u64> = prev
            .entries()
            .iter()
            .map(|e| (&*e.id, e.last_used_s()))
            .collect();
        for s in &mut specs {
            if let Some(&at) = seen.get(s.id.as_str()) {
                s.last_used_s = s.last_used_s.max(at);
            }
        }
    }
    let now = crate::auth::now_ms();
    for s in &mut specs {
        s.number = numbers.number(&s.id, s.team.as_deref(), now);
    }
    numbers.sweep(now);
    slots.retain_used(|k| k.starts_with("model:"));
    let open = config.server.master_key.is_none();
    let (table, refused) = KeyTable::build(specs, open);
    for id in refused {
        ::log::error!("key {id} has the same secret as another key; it is left out");
    }
    Ok(Arc::new(table))
}

/// A key id and its team id.
type KeyAndTeam = (Box<str>, Option<Box<str>>);

/// How long a key's number outlives the key's last table: longer than any request runs, so
/// a request settled after its key was deleted still finds its key's name.
const NUMBER_GRACE_MS: i64 = 86_400_000;

/// A key's number names it in a shard's ledger row; control resolves it. A key and team pair
/// keeps its number while it is in the table and for [`NUMBER_GRACE_MS`] after; then the
/// number is reused, so the registry holds only the keys of the last day.
#[derive(Debug, Default)]
pub struct KeyNumbers {
    by_key: HashMap<KeyAndTeam, u32>,
    /// By number less one: the pair, and when it was last in a table.
    named: Vec<Option<(KeyAndTeam, i64)>>,
    free: Vec<u32>,
    swept_ms: i64,
}

impl KeyNumbers {
    /// The number of `id` in `team` (a new one the first time), marked in use at `now_ms`.
    pub fn number(&mut self, id: &str, team: Option<&str>, now_ms: i64) -> u32 {
        let k = (Box::from(id), team.map(Box::from));
        if let Some(&n) = self.by_key.get(&k) {
            if let Some(Some(e)) = self.named.get_mut(n as usize - 1) {
                e.1 = now_ms;
            }
            return n;
        }
        let entry = Some((k.clone(), now_ms));
        let n = match self.free.pop() {
            Some(n) => {
                self.named[n as usize - 1] = entry;
                n
            }
            None => {
                self.named.push(entry);
                self.named.len() as u32
            }
        };
        self.by_key.insert(k, n);
        n
    }

    /// The key id and team id of number `n`.
    pub fn get(&self, n: u32) -> Option<(&str, Option<&str>)> {
        let ((id, team), _) = self.named.get((n as usize).checked_sub(1)?)?.as_ref()?;
        Some((id, team.as_deref()))
    }

    /// Frees (at most hourly) the numbers of pairs in no table for [`NUMBER_GRACE_MS`]. Only
    /// call right after numbering a whole table, so every current key is fresh.
    fn sweep(&mut self, now_ms: i64) {
        if now_ms - self.swept_ms < 3_600_000 {
            return;
        }
        self.swept_ms = now_ms;
        for (i, slot) in self.named.iter_mut().enumerate() {
            if slot
                .as_ref()
                .is_some_and(|e| now_ms - e.1 > NUMBER_GRACE_MS)
                && let Some((k, _)) = slot.take()
            {
                self.by_key.remove(&k);
                self.free.push(i as u32 + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_guardrails_and_cache_reach_its_entry_and_its_teams_follow_the_team() {
        use crate::auth::KeyCache;
        use crate::store::{CacheSetting, KeySpec as StoreKey, TeamSpec};
        let config =
            crate::config::load_str(crate::config::EMBEDDED_DEFAULT, &|_| Some("sk-up".into()))
                .unwrap();
        let mut store = Store::open(None).unwrap();
        let mut team = TeamSpec {
            guardrails: vec!["toxicity".into(), "pii".into()],
            ..TeamSpec::default()
        };
        store.write(|w| w.insert_team(Some("t"), &team, 1)).unwrap();
        let key = StoreKey {
            team_id: Some("t".into()),
            guardrails: vec!["pii".into(), "jailbreak".into()],
            cache: CacheSetting::Off,
            ..StoreKey::default()
        };
        let (row, _) = store.write(|w| w.insert_key(&key, 2)).unwrap();
        let (mut slots, mut numbers) = (Slots::default(), KeyNumbers::default());
        let mut build = |store: &Store| table(&config, store, None, &mut slots, &mut numbers);
        let names = |t: &KeyTable| -> Vec<String> {
            let e = t.entries().iter().find(|e| *e.id == row.id).unwrap();
            e.guardrails.iter().map(|n| n.to_string()).collect()
        };
        let t = build(&store).unwrap();
        assert_eq!(names(&t), ["pii", "jailbreak", "toxicity"]);
        let e = t.entries().iter().find(|e| *e.id == row.id).unwrap();
        assert_eq!(e.cache, KeyCache::Off);

        team.guardrails = vec!["pii.v2".into()];
        store.write(|w| w.update_team("t", &team, 3)).unwrap();
        assert_eq!(
            names(&build(&store).unwrap()),
            ["pii", "jailbreak", "pii.v2"]
        );
        // Config keys have none and follow their alias.
        let t = build(&store).unwrap();
        for e in t.entries().iter().filter(|e| e.id.starts_with("config:")) {
            assert!(e.guardrails.is_empty() && e.cache == KeyCache::Follow);
        }
    }

    #[test]
    fn numbers_are_stable_then_reused_only_after_the_grace() {
        let mut n = KeyNumbers::default();
        let day = NUMBER_GRACE_MS;
        let a = n.number("key_a", Some("t"), 0);
        let b = n.number("key_b", None, 0);
        assert_ne!(a, crate::auth::NO_NUMBER);
        assert_eq!(
            n.number("key_a", Some("t"), 10),
            a,
            "same pair, same number"
        );
        let moved = n.number("key_a", Some("u"), 10);
        assert_ne!(moved, a, "a key that changed team gets a new number");
        assert_eq!(n.get(a), Some(("key_a", Some("t"))));
        assert_eq!(n.get(b), Some(("key_b", None)));
        assert_eq!(n.get(crate::auth::NO_NUMBER), None);
        // key_b stays in the table; key_a/t left it at 10.
        n.number("key_b", None, day + 5);
        n.sweep(day + 5);
        assert_eq!(n.get(a), Some(("key_a", Some("t"))), "within the grace");
        n.number("key_b", None, 2 * day + 3_600_000);
        n.sweep(2 * day + 3_600_000);
        assert_eq!(n.get(a), None, "freed after the grace");
        assert_eq!(
            n.get(b),
            Some(("key_b", None)),
            "a current key is never freed"
        );
        let c = n.number("key_c", None, 2 * day + 3_600_000);
        assert!(c == a || c == moved, "a freed number is reused");
    }
}
