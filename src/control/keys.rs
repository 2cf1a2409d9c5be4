//! The key table shards authenticate against, built from the config file's keys (read-only,
//! ids `config:<name>`) and the store's.

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
    slots.retain_used(|k| k.starts_with("model:"));
    let open = config.server.master_key.is_none();
    let (table, refused) = KeyTable::build(specs, open);
    for id in refused {
        ::log::error!("key {id} has the same secret as another key; it is left out");
    }
    Ok(Arc::new(table))
}
