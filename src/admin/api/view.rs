//! The JSON shapes of keys and teams, in LiteLLM's field names. Times are ISO 8601 UTC.
//!
//! A key object never carries the secret; only `/key/generate` and `/key/regenerate` add it,
//! as `"key"`, to the object they return.

use serde_json::{Value, json};

use super::ConfigKey;
use crate::observe::time::iso8601;
use crate::store::{KeyRow, Limits, TeamRow};

fn with_limits(mut v: Value, limits: &Limits) -> Value {
    if let (Value::Object(obj), Ok(Value::Object(l))) = (&mut v, serde_json::to_value(limits)) {
        obj.extend(l);
    }
    v
}

pub(super) fn key(row: &KeyRow) -> Value {
    let s = &row.spec;
    let v = json!({
        "key_id": row.id,
        "token": row.id,
        "key_name": row.hint,
        "key_alias": s.alias,
        "team_id": s.team_id,
        "user_id": s.user_id,
        "models": s.models,
        "metadata": s.metadata,
        "tags": s.tags,
        "expires": s.expires_ms.map(iso8601),
        "blocked": s.blocked,
        "guardrails": s.guardrails,
        "cache": s.cache.to_json(),
        "source": "store",
        "spend": row.spend,
        "created_at": iso8601(row.created_ms),
        "updated_at": iso8601(row.updated_ms),
        "last_used_at": row.last_used_ms.map(iso8601),
    });
    with_limits(v, &s.limits)
}

/// A key object plus its secret.
pub(super) fn key_with_secret(row: &KeyRow, secret: String) -> Value {
    let mut v = key(row);
    if let Value::Object(obj) = &mut v {
        obj.insert("key".into(), Value::String(secret));
    }
    v
}

/// A key from the YAML config: its id, name and models only (the rest lives in the file).
pub(super) fn config_key(k: &ConfigKey) -> Value {
    let id = format!("config:{}", k.name);
    json!({
        "key_id": id,
        "token": id,
        "key_alias": k.name,
        "models": k.models,
        "source": "config",
    })
}

pub(super) fn team(row: &TeamRow) -> Value {
    let s = &row.spec;
    let v = json!({
        "team_id": row.id,
        "team_alias": s.alias,
        "models": s.models,
        "metadata": Value::Object(s.metadata.clone()),
        "blocked": s.blocked,
        "guardrails": s.guardrails,
        "spend": row.spend,
        "created_at": iso8601(row.created_ms),
        "updated_at": iso8601(row.updated_ms),
    });
    with_limits(v, &s.limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeySpec;

    #[test]
    fn a_key_object_has_every_litellm_field_and_no_secret() {
        let row = KeyRow {
            id: "key_01".into(),
            hint: "sk-...wxyz".into(),
            spec: KeySpec {
                expires_ms: Some(1_764_687_845_000),
                ..KeySpec::default()
            },
            spend: 0.0,
            previous_until_ms: None,
            created_ms: 0,
            updated_ms: 0,
            last_used_ms: None,
        };
        let v = key(&row);
        for f in [
            "key_id",
            "token",
            "key_name",
            "key_alias",
            "team_id",
            "user_id",
            "models",
            "metadata",
            "tags",
            "expires",
            "blocked",
            "guardrails",
            "cache",
            "source",
            "spend",
            "created_at",
            "updated_at",
            "last_used_at",
            "max_budget",
            "soft_budget",
            "budget_duration",
            "rpm_limit",
            "tpm_limit",
            "max_parallel_requests",
            "model_rpm_limit",
            "model_tpm_limit",
            "model_max_budget",
        ] {
            assert!(v.get(f).is_some(), "missing {f}");
        }
        assert_eq!(v["expires"], "2025-12-02T15:04:05Z");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["last_used_at"], Value::Null);
        assert_eq!((&v["guardrails"], &v["cache"]), (&json!([]), &Value::Null));
        assert!(v.get("key").is_none());
        assert_eq!(key_with_secret(&row, "sk-x".into())["key"], "sk-x");
    }
}
