//! The `/key/*` endpoints: generate, update, regenerate, delete, block, unblock, info, list.
//!
//! A key is named by its id or by its secret; "config:<name>" names a key from the YAML config,
//! which may be read but not changed. Checks that read the store (alias taken, team exists, the
//! team allows the models) run inside the write's transaction, so they hold when it commits.

use serde_json::{Value, json};

use super::failure::Failure;
use super::fields::{Body, LIMIT_FIELDS};
use super::query::Query;
use super::{Context, Done, view};
use crate::store::{KeyFilter, KeyRow, KeySpec, Reader, Store};

/// What `/key/generate` accepts; `/key/update` takes these and `key`.
const SPEC_FIELDS: [&str; 10] = [
    "key_alias",
    "team_id",
    "user_id",
    "models",
    "metadata",
    "tags",
    "duration",
    "blocked",
    "guardrails",
    "cache",
];

/// Listing pages hold at most this many keys.
const MAX_PAGE: u64 = 1000;

fn fields(extra: &[&'static str]) -> Vec<&'static str> {
    extra
        .iter()
        .chain(&SPEC_FIELDS)
        .chain(&LIMIT_FIELDS)
        .copied()
        .collect()
}

/// Applies the body's fields to `spec` (absent: kept; null: cleared).
fn apply(body: &Body, spec: &mut KeySpec, cx: &Context) -> Result<(), Failure> {
    if let Some(v) = body.text("key_alias")? {
        spec.alias = v;
    }
    if let Some(v) = body.text("team_id")? {
        spec.team_id = v;
    }
    if let Some(v) = body.text("user_id")? {
        spec.user_id = v;
    }
    if let Some(v) = body.models("models", cx.aliases)? {
        spec.models = v;
    }
    if let Some(v) = body.object("metadata")? {
        spec.metadata = v;
    }
    if let Some(v) = body.strings("tags")? {
        spec.tags = v;
    }
    if let Some(v) = body.duration("duration")? {
        spec.expires_ms = v.map(|secs| cx.now_ms.saturating_add(secs * 1000));
    }
    if let Some(v) = body.flag("blocked")? {
        spec.blocked = v;
    }
    if let Some(v) = body.guardrails("guardrails")? {
        spec.guardrails = v;
    }
    if let Some(v) = body.cache("cache")? {
        spec.cache = v;
    }
    body.apply_limits(&mut spec.limits, cx.aliases)
}

/// The checks that read the store, for the fields the body sets. `own`: the key being updated.
fn check(r: &Reader, body: &Body, spec: &KeySpec, own: Option<&str>) -> Result<(), Failure> {
    if body.has("key_alias")
        && let Some(alias) = &spec.alias
        && let Some(other) = r.key_by_alias(alias)?
        && Some(other.id.as_str()) != own
    {
        let message = format!("key_alias {alias:?} is already used by key {}", other.id);
        return Err(Failure::conflict("duplicate_alias", "key_alias", message));
    }
    if (body.has("team_id") || body.has("models"))
        && let Some(team_id) = &spec.team_id
    {
        let Some(team) = r.team(team_id)? else {
            let message = format!("no team {team_id:?}");
            return Err(Failure::not_found(
                "team_not_found",
                Some("team_id"),
                message,
            ));
        };
        let allowed = &team.spec.models;
        if let Some(m) = spec
            .models
            .iter()
            .find(|m| !allowed.is_empty() && !allowed.contains(m))
        {
            let message = format!(
                "models lists {m:?}, which team {team_id} does not allow; its models are: {}",
                allowed.join(", ")
            );
            return Err(Failure::invalid(
                "model_not_in_team",
                Some("models"),
                message,
            ));
        }
    }
    Ok(())
}

/// "no such key", naming what was given if it is an id; a secret is never echoed.
fn unknown(given: &str, param: &str) -> Failure {
    let hex = given.strip_prefix("key_").unwrap_or("");
    let is_id = hex.len() == 20 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let message = if is_id || given.starts_with("config:") {
        format!("no key {given} (given in {param})")
    } else {
        format!("no key has the id or secret given in {param}")
    };
    Failure::not_found("key_not_found", Some(param), message)
}

/// The store key `given` names (its id or its secret), for a call that changes it.
fn lookup(r: &Reader, cx: &Context, given: &str, param: &str) -> Result<KeyRow, Failure> {
    if let Some(name) = given.strip_prefix("config:")
        && cx.config_keys.iter().any(|k| k.name == name)
    {
        return Err(Failure::read_only(param, given));
    }
    if let Some(row) = r.key(given)? {
        return Ok(row);
    }
    if let Some(row) = r.key_by_secret(given)? {
        return Ok(row);
    }
    Err(unknown(given, param))
}

pub(super) fn generate(store: &mut Store, cx: &Context, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/key/generate", &fields(&[]))?;
    let mut spec = KeySpec::default();
    apply(&body, &mut spec, cx)?;
    let (row, secret) = store.write(|w| {
        check(w, &body, &spec, None)?;
        Ok::<_, Failure>(w.insert_key(&spec, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::key_with_secret(&row, secret)))
}

pub(super) fn update(store: &mut Store, cx: &Context, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/key/update", &fields(&["key"]))?;
    let given = body.required("key")?;
    let row = store.write(|w| {
        let row = lookup(w, cx, &given, "key")?;
        let mut spec = row.spec.clone();
        apply(&body, &mut spec, cx)?;
        check(w, &body, &spec, Some(&row.id))?;
        Ok::<_, Failure>(w.update_key(&row.id, &spec, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::key(&row)))
}

/// `grace_period`: a duration ("1h") or whole seconds; absent, null or 0 = none.
fn grace_ms(body: &Body) -> Result<i64, Failure> {
    let bad = || {
        let message = "grace_period must be a duration such as \"1h\" or a whole number of seconds";
        Failure::field("grace_period", message)
    };
    let secs = match body.raw("grace_period") {
        None | Some(Value::Null) => 0,
        Some(Value::String(_)) => body.duration("grace_period")?.flatten().unwrap_or(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|s| (0..=1_000_000_000_000_000).contains(s))
            .ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    Ok(secs * 1000)
}

pub(super) fn regenerate(
    store: &mut Store,
    cx: &Context,
    in_path: Option<&str>,
    body: &[u8],
) -> Result<Done, Failure> {
    let endpoint = if in_path.is_some() {
        "/key/{key}/regenerate"
    } else {
        "/key/regenerate"
    };
    let body = Body::parse(body, endpoint, &["key", "grace_period"])?;
    let given = match in_path {
        Some(_) if body.has("key") => {
            let message = "the key is given in the path; leave key out of the body";
            return Err(Failure::field("key", message));
        }
        Some(key) => key.to_owned(),
        None => body.required("key")?,
    };
    let grace = grace_ms(&body)?;
    let (row, secret) = store.write(|w| {
        let row = lookup(w, cx, &given, "key")?;
        Ok::<_, Failure>(w.regenerate_key(&row.id, grace, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::key_with_secret(&row, secret)))
}

pub(super) fn delete(store: &mut Store, cx: &Context, body: &[u8]) -> Result<Done, Failure> {
    let body = Body::parse(body, "/key/delete", &["keys", "key_aliases"])?;
    let keys = body.strings("keys")?.unwrap_or_default();
    let aliases = body.strings("key_aliases")?.unwrap_or_default();
    if keys.is_empty() && aliases.is_empty() {
        let message = "give keys (ids or secrets) or key_aliases to delete";
        return Err(Failure::field("keys", message));
    }
    let ids = store.write(|w| {
        let mut ids = Vec::new();
        for given in &keys {
            ids.push(lookup(w, cx, given, "keys")?.id);
        }
        for alias in &aliases {
            if let Some(row) = w.key_by_alias(alias)? {
                ids.push(row.id);
            } else if cx.config_keys.iter().any(|k| &k.name == alias) {
                return Err(Failure::read_only(
                    "key_aliases",
                    &format!("config:{alias}"),
                ));
            } else {
                let message = format!("no key has key_alias {alias:?} (given in key_aliases)");
                return Err(Failure::not_found(
                    "key_not_found",
                    Some("key_aliases"),
                    message,
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        w.delete_keys(&ids)?;
        Ok::<_, Failure>(ids)
    })?;
    Ok(Done::wrote(json!({ "deleted_keys": ids })))
}

pub(super) fn block(
    store: &mut Store,
    cx: &Context,
    body: &[u8],
    blocked: bool,
) -> Result<Done, Failure> {
    let endpoint = if blocked {
        "/key/block"
    } else {
        "/key/unblock"
    };
    let body = Body::parse(body, endpoint, &["key"])?;
    let given = body.required("key")?;
    let row = store.write(|w| {
        let row = lookup(w, cx, &given, "key")?;
        let spec = KeySpec {
            blocked,
            ..row.spec
        };
        Ok::<_, Failure>(w.update_key(&row.id, &spec, cx.now_ms)?)
    })?;
    Ok(Done::wrote(view::key(&row)))
}

pub(super) fn info(store: &Store, cx: &Context, query: &str) -> Result<Done, Failure> {
    let query = Query::parse(query, "/key/info", &["key"])?;
    let given = query.required("key")?;
    let config = given.strip_prefix("config:");
    let info = match config.and_then(|name| cx.config_keys.iter().find(|k| k.name == name)) {
        Some(k) => view::config_key(k),
        None => view::key(&lookup(&store.reader(), cx, given, "key")?),
    };
    let id = info["key_id"].clone();
    Ok(Done::read(json!({ "key": id, "info": info })))
}

pub(super) fn list(store: &Store, cx: &Context, query: &str) -> Result<Done, Failure> {
    let query = Query::parse(
        query,
        "/key/list",
        &["team_id", "key_alias", "page", "size"],
    )?;
    let filter = KeyFilter {
        team_id: query.get("team_id"),
        alias: query.get("key_alias"),
    };
    let page = query.positive("page", 1)?;
    let size = query.positive("size", 100)?.min(MAX_PAGE);
    // Config keys belong to no team; they come first.
    let config: Vec<_> = match filter.team_id {
        Some(_) => Vec::new(),
        None => cx
            .config_keys
            .iter()
            .filter(|k| filter.alias.is_none_or(|a| a == k.name))
            .collect(),
    };
    let reader = store.reader();
    let total = config.len() as u64 + reader.key_count(filter)?;
    let start = (page - 1).saturating_mul(size);
    let n_config = config.len() as u64;
    let shown = start.min(n_config) as usize..start.saturating_add(size).min(n_config) as usize;
    let mut keys: Vec<Value> = config[shown].iter().map(|k| view::config_key(k)).collect();
    let wanted = size - keys.len() as u64;
    let stored = reader.keys(filter, start.saturating_sub(n_config), wanted)?;
    keys.extend(stored.iter().map(view::key));
    Ok(Done::read(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": total.div_ceil(size),
    })))
}

#[cfg(test)]
mod tests;
