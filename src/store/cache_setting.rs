//! A key's own response-cache setting (the `keys.cache` column): its one JSON reading, shared by
//! the admin API, which refuses what it does not accept, and the column, which holds only what
//! that reading accepted.
//!
//! `null` follows the alias's rule, `false` never caches, `true` caches with
//! `CacheRule::default()`, and an object overrides parts of that default. The parts an object
//! leaves out are filled when the key table is built, so they follow the default of the build
//! that serves. A key may never share answers across tenants: scope `shared` is an alias's
//! choice, made in the config.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::auth::KeyCache;
use crate::config::cache::{CacheRule, Scope};

/// The longest `ttl_s` a key may set: a year.
pub const MAX_TTL_S: u64 = 31_536_000;

const FIELDS: [&str; 3] = ["ttl_s", "scope", "store_length"];

/// What the admin API set on a key's `cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheSetting {
    /// `null` or never set: the alias's rule decides.
    #[default]
    Follow,
    /// `false`: this key's requests are never cached.
    Off,
    /// `true` (every part `None`) or an object.
    On(CacheOverride),
}

/// The parts of `CacheRule::default()` a key's `cache` object replaces; `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheOverride {
    /// 1..=[`MAX_TTL_S`].
    pub ttl_s: Option<u64>,
    /// [`Scope::Key`] or [`Scope::Team`], never [`Scope::Shared`].
    pub scope: Option<Scope>,
    pub store_length: Option<bool>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl CacheSetting {
    /// Reads `cache` as the admin API takes it; the error is a message naming the field.
    pub fn from_json(v: &Value) -> Result<CacheSetting, String> {
        let map = match v {
            Value::Null => return Ok(CacheSetting::Follow),
            Value::Bool(false) => return Ok(CacheSetting::Off),
            Value::Bool(true) => return Ok(CacheSetting::On(CacheOverride::default())),
            Value::Object(map) => map,
            v => {
                return Err(format!(
                    "cache must be null, true, false or an object, not {}",
                    kind(v)
                ));
            }
        };
        if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!(
                "cache has no field {unknown:?}; its fields are: {}",
                FIELDS.join(", ")
            ));
        }
        Ok(CacheSetting::On(CacheOverride {
            ttl_s: map.get("ttl_s").map(ttl_s).transpose()?,
            scope: map.get("scope").map(scope).transpose()?,
            store_length: match map.get("store_length") {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(v) => {
                    let message =
                        format!("cache.store_length must be true or false, not {}", kind(v));
                    return Err(message);
                }
            },
        }))
    }

    /// The admin API's form: `null`, `false`, `true` (nothing overridden) or the object given.
    pub fn to_json(&self) -> Value {
        let o = match self {
            CacheSetting::Follow => return Value::Null,
            CacheSetting::Off => return Value::Bool(false),
            CacheSetting::On(o) if *o == CacheOverride::default() => return Value::Bool(true),
            CacheSetting::On(o) => o,
        };
        let mut map = Map::new();
        if let Some(n) = o.ttl_s {
            map.insert("ttl_s".into(), n.into());
        }
        if let Some(s) = o.scope {
            let word = match s {
                Scope::Key => "key",
                Scope::Team => "team",
                Scope::Shared => "shared",
            };
            map.insert("scope".into(), word.into());
        }
        if let Some(b) = o.store_length {
            map.insert("store_length".into(), b.into());
        }
        Value::Object(map)
    }

    /// What the key table holds: the object's parts laid over `CacheRule::default()`.
    pub fn key_cache(&self) -> KeyCache {
        match self {
            CacheSetting::Follow => KeyCache::Follow,
            CacheSetting::Off => KeyCache::Off,
            CacheSetting::On(o) => {
                let mut rule = CacheRule::default();
                if let Some(n) = o.ttl_s {
                    rule.ttl = Duration::from_secs(n);
                }
                if let Some(s) = o.scope {
                    rule.scope = s;
                }
                if let Some(b) = o.store_length {
                    rule.store_length = b;
                }
                KeyCache::On(rule)
            }
        }
    }

    /// The column's text; `NULL` when following the alias.
    pub(super) fn column(&self) -> Option<String> {
        match self {
            CacheSetting::Follow => None,
            s => Some(s.to_json().to_string()),
        }
    }

    /// Reads the column back (what [`CacheSetting::column`] wrote).
    pub(super) fn from_column(
        r: &super::sql::Row,
        idx: usize,
    ) -> Result<CacheSetting, super::StoreError> {
        let Some(text) = r.get::<Option<String>>(idx)? else {
            return Ok(CacheSetting::Follow);
        };
        let corrupt =
            |m: String| super::StoreError::new(super::Fault::Corrupt, format!("column {idx}: {m}"));
        let v: Value = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        CacheSetting::from_json(&v).map_err(corrupt)
    }
}

/// As its JSON reading (the key snapshot on disk keeps it so).
impl serde::Serialize for CacheSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for CacheSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        CacheSetting::from_json(&v).map_err(serde::de::Error::custom)
    }
}

fn ttl_s(v: &Value) -> Result<u64, String> {
    v.as_u64()
        .filter(|n| (1..=MAX_TTL_S).contains(n))
        .ok_or_else(|| {
            let given = if v.is_number() {
                v.to_string()
            } else {
                kind(v).to_owned()
            };
            format!(
                "cache.ttl_s must be a whole number of seconds from 1 to {MAX_TTL_S}, not {given}"
            )
        })
}

fn scope(v: &Value) -> Result<Scope, String> {
    match v.as_str() {
        Some("key") => Ok(Scope::Key),
        Some("team") => Ok(Scope::Team),
        Some("shared") => Err(
            "cache.scope \"shared\" is not allowed on a key: sharing answers across tenants is \
             configured per alias (models.<alias>.cache.scope)"
                .into(),
        ),
        Some(other) => Err(format!(
            "cache.scope must be \"key\" or \"team\", not {other:?}"
        )),
        None => Err(format!(
            "cache.scope must be \"key\" or \"team\", not {}",
            kind(v)
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(v: Value) -> Result<CacheSetting, String> {
        CacheSetting::from_json(&v)
    }

    #[test]
    fn null_false_true_and_objects_read_and_show_as_given() {
        assert_eq!(read(json!(null)), Ok(CacheSetting::Follow));
        assert_eq!(read(json!(false)), Ok(CacheSetting::Off));
        assert_eq!(
            read(json!(true)),
            Ok(CacheSetting::On(CacheOverride::default()))
        );
        for v in [
            json!(null),
            json!(false),
            json!(true),
            json!({"ttl_s": 60}),
            json!({"ttl_s": MAX_TTL_S, "scope": "team", "store_length": true}),
            json!({"scope": "key"}),
        ] {
            assert_eq!(read(v.clone()).unwrap().to_json(), v);
        }
        // An object that overrides nothing is `true`.
        assert_eq!(read(json!({})).unwrap().to_json(), json!(true));
    }

    #[test]
    fn the_table_gets_the_default_rule_with_the_overrides() {
        assert_eq!(CacheSetting::Follow.key_cache(), KeyCache::Follow);
        assert_eq!(CacheSetting::Off.key_cache(), KeyCache::Off);
        assert_eq!(
            read(json!(true)).unwrap().key_cache(),
            KeyCache::On(CacheRule::default())
        );
        let KeyCache::On(rule) = read(json!({"ttl_s": 5, "scope": "team"}))
            .unwrap()
            .key_cache()
        else {
            panic!("on");
        };
        assert_eq!(rule.ttl, Duration::from_secs(5));
        assert_eq!(rule.scope, Scope::Team);
        assert_eq!(rule.store_length, CacheRule::default().store_length);
    }

    #[test]
    fn refusals_name_the_field() {
        let err = |v: Value| read(v).unwrap_err();
        assert_eq!(
            err(json!("yes")),
            "cache must be null, true, false or an object, not a string"
        );
        assert!(err(json!([])).contains("not an array"));
        assert!(err(json!({"ttl": 5})).contains("no field \"ttl\""));
        for bad in [
            json!(0),
            json!(MAX_TTL_S + 1),
            json!(1.5),
            json!(-1),
            json!("60"),
        ] {
            assert!(
                err(json!({"ttl_s": bad})).starts_with("cache.ttl_s must be"),
                "{bad}"
            );
        }
        let shared = err(json!({"scope": "shared"}));
        assert!(shared.contains("per alias"), "{shared}");
        assert!(err(json!({"scope": "everyone"})).contains("\"everyone\""));
        assert!(err(json!({"scope": 1})).starts_with("cache.scope"));
        assert!(err(json!({"store_length": "no"})).starts_with("cache.store_length"));
    }
}
