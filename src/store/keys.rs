//! Key rows: the admin API's view ([`KeyRow`]), the request path's ([`KeyRecord`]), and the
//! writes that make, change, rotate and delete keys.
//!
//! A secret exists only inside [`Writer::insert_key`] and [`Writer::regenerate_key`], which
//! return it to the caller once; the row keeps its hash and hint. The id never changes.

use serde_json::{Map, Value};

use super::sql::{Param, Row, args, json_text};
use super::{CacheSetting, Fault, KeyRecord, Limits, Reader, StoreError, Writer, secret};
use crate::auth::digest;

/// What the admin API may set on a key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeySpec {
    pub alias: Option<String>,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    /// Allowed model aliases; empty = all.
    pub models: Vec<String>,
    pub metadata: Map<String, Value>,
    pub tags: Vec<String>,
    pub expires_ms: Option<i64>,
    pub blocked: bool,
    pub limits: Limits,
    /// Guardrail policy names (checked by the admin API, not against the config).
    pub guardrails: Vec<String>,
    pub cache: CacheSetting,
}

/// A key as the admin API shows it (no secret, no hash).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRow {
    pub id: String,
    /// "sk-...wxyz".
    pub hint: String,
    pub spec: KeySpec,
    pub spend: f64,
    /// Until when (unix ms) the secret replaced by the last regenerate still works.
    pub previous_until_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub last_used_ms: Option<i64>,
}

/// Which keys a listing shows; `None` = any.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyFilter<'a> {
    pub team_id: Option<&'a str>,
    pub alias: Option<&'a str>,
}

const ROW: &str = "SELECT key_id, key_hint, key_alias, team_id, user_id, models, metadata, tags, \
    expires_at, blocked, limits, spend, previous_valid_until, created_at, updated_at, \
    last_used_at, guardrails, cache FROM keys";

// PostgreSQL types a parameter by its use: `IS NULL` alone says nothing, hence the casts.
const FILTER: &str = "WHERE (CAST(?1 AS TEXT) IS NULL OR team_id = ?1) \
    AND (CAST(?2 AS TEXT) IS NULL OR key_alias = ?2)";

fn key_row(r: Row) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        id: r.get(0)?,
        hint: r.get(1)?,
        spec: KeySpec {
            alias: r.get(2)?,
            team_id: r.get(3)?,
            user_id: r.get(4)?,
            models: r.json(5)?,
            metadata: r.json(6)?,
            tags: r.json(7)?,
            expires_ms: r.get(8)?,
            blocked: r.get(9)?,
            limits: r.json(10)?,
            guardrails: r.json(16)?,
            cache: CacheSetting::from_column(&r, 17)?,
        },
        spend: r.get(11)?,
        previous_until_ms: r.get(12)?,
        created_ms: r.get(13)?,
        updated_ms: r.get(14)?,
        last_used_ms: r.get(15)?,
    })
}

fn key_record(r: Row) -> Result<KeyRecord, StoreError> {
    /// A team column: `None` without a team (the join found none).
    fn team<T: serde::de::DeserializeOwned>(r: Row, i: usize) -> Result<Option<T>, StoreError> {
        match r.get::<Option<String>>(i)? {
            Some(_) => r.json(i).map(Some),
            None => Ok(None),
        }
    }
    Ok(KeyRecord {
        id: r.get(0)?,
        alias: r.get(1)?,
        hash: r
            .hash(2)?
            .ok_or_else(|| StoreError::new(Fault::Corrupt, "a key without hash"))?,
        previous: r.hash(3)?.zip(r.get(4)?),
        team_id: r.get(5)?,
        models: r.json(6)?,
        team_models: team(r, 7)?.unwrap_or_default(),
        expires_ms: r.get(8)?,
        blocked: r.get(9)?,
        team_blocked: r.get::<Option<bool>>(10)?.unwrap_or(false),
        limits: r.json(11)?,
        team_limits: team(r, 12)?,
        user_id: r.get(13)?,
        guardrails: r.json(14)?,
        team_guardrails: team(r, 15)?.unwrap_or_default(),
        cache: CacheSetting::from_column(&r, 16)?,
    })
}

// === impl Reader ===

impl Reader<'_> {
    fn key_where(&self, clause: &str, arg: &dyn Param) -> Result<Option<KeyRow>, StoreError> {
        let sql = format!("{ROW} WHERE {clause} = ?1");
        self.conn.query_opt(&sql, &[arg], key_row)
    }

    pub fn key(&self, id: &str) -> Result<Option<KeyRow>, StoreError> {
        self.key_where("key_id", &id)
    }

    /// The key whose current secret is `secret` (a replaced one, even in its grace, does not
    /// count: it authenticates requests, it does not name the key).
    pub fn key_by_secret(&self, secret: &str) -> Result<Option<KeyRow>, StoreError> {
        self.key_where("key_hash", &&digest(secret.as_bytes())[..])
    }

    pub fn key_by_alias(&self, alias: &str) -> Result<Option<KeyRow>, StoreError> {
        self.key_where("key_alias", &alias)
    }

    /// One page of keys, oldest first.
    pub fn keys(
        &self,
        filter: KeyFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let sql = format!("{ROW} {FILTER} ORDER BY created_at, rowid LIMIT ?3 OFFSET ?4");
        let (offset, limit) = (clamp(offset), clamp(limit));
        let args = args![filter.team_id, filter.alias, limit, offset];
        self.conn.query(&sql, args, key_row)
    }

    pub fn key_count(&self, filter: KeyFilter) -> Result<u64, StoreError> {
        let sql = format!("SELECT count(*) FROM keys {FILTER}");
        let n: i64 = self.conn.value(&sql, args![filter.team_id, filter.alias])?;
        Ok(n as u64)
    }

    pub fn key_records(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.conn.query(
            "SELECT k.key_id, k.key_alias, k.key_hash, k.previous_hash, k.previous_valid_until, \
             k.team_id, k.models, t.models, k.expires_at, k.blocked, t.blocked, k.limits, \
             t.limits, k.user_id, k.guardrails, t.guardrails, k.cache \
             FROM keys k LEFT JOIN teams t ON t.team_id = k.team_id \
             ORDER BY k.created_at, k.rowid",
            args![],
            key_record,
        )
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn must_exist(changed: u64, id: &str) -> Result<(), StoreError> {
    match changed {
        0 => Err(StoreError::new(Fault::NotFound, format!("no key {id}"))),
        _ => Ok(()),
    }
}

// === impl Writer ===

impl Writer<'_> {
    /// Makes a key; returns it and its secret (the only time the secret is seen).
    pub fn insert_key(&self, spec: &KeySpec, now_ms: i64) -> Result<(KeyRow, String), StoreError> {
        let id = secret::new_id("key_")?;
        let secret = secret::new_secret()?;
        self.conn.execute(
            "INSERT INTO keys (key_id, key_hash, key_hint, key_alias, team_id, user_id, \
                 models, metadata, tags, expires_at, blocked, limits, guardrails, cache, \
                 created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
            args![
                id,
                &digest(secret.as_bytes())[..],
                secret::hint(&secret),
                spec.alias,
                spec.team_id,
                spec.user_id,
                json_text(&spec.models),
                json_text(&spec.metadata),
                json_text(&spec.tags),
                spec.expires_ms,
                spec.blocked,
                json_text(&spec.limits),
                json_text(&spec.guardrails),
                spec.cache.column(),
                now_ms,
            ],
        )?;
        Ok((self.existing(&id)?, secret))
    }

    fn existing(&self, id: &str) -> Result<KeyRow, StoreError> {
        self.key(id)?
            .ok_or_else(|| StoreError::new(Fault::NotFound, format!("no key {id}")))
    }

    /// Replaces everything the admin API may set on key `id`.
    pub fn update_key(&self, id: &str, spec: &KeySpec, now_ms: i64) -> Result<KeyRow, StoreError> {
        let n = self.conn.execute(
            "UPDATE keys SET key_alias = ?2, team_id = ?3, user_id = ?4, models = ?5, \
                 metadata = ?6, tags = ?7, expires_at = ?8, blocked = ?9, limits = ?10, \
                 guardrails = ?11, cache = ?12, updated_at = ?13 WHERE key_id = ?1",
            args![
                id,
                spec.alias,
                spec.team_id,
                spec.user_id,
                json_text(&spec.models),
                json_text(&spec.metadata),
                json_text(&spec.tags),
                spec.expires_ms,
                spec.blocked,
                json_text(&spec.limits),
                json_text(&spec.guardrails),
                spec.cache.column(),
                now_ms,
            ],
        )?;
        must_exist(n, id)?;
        self.existing(id)
    }

    /// Gives key `id` a new secret; the old one keeps working for `grace_ms` (none if 0).
    pub fn regenerate_key(
        &self,
        id: &str,
        grace_ms: i64,
        now_ms: i64,
    ) -> Result<(KeyRow, String), StoreError> {
        let secret = secret::new_secret()?;
        let until = (grace_ms > 0).then(|| now_ms.saturating_add(grace_ms));
        let n = self.conn.execute(
            "UPDATE keys SET \
             previous_hash = CASE WHEN CAST(?4 AS BIGINT) IS NULL THEN NULL ELSE key_hash END, \
             previous_valid_until = ?4, key_hash = ?2, key_hint = ?3, updated_at = ?5 \
             WHERE key_id = ?1",
            args![
                id,
                &digest(secret.as_bytes())[..],
                secret::hint(&secret),
                until,
                now_ms
            ],
        )?;
        must_exist(n, id)?;
        Ok((self.existing(id)?, secret))
    }

    /// Deletes keys by id; every id must exist (the caller checked, inside this transaction).
    pub fn delete_keys(&self, ids: &[String]) -> Result<(), StoreError> {
        for id in ids {
            let n = self
                .conn
                .execute("DELETE FROM keys WHERE key_id = ?1", args![id])?;
            must_exist(n, id)?;
        }
        Ok(())
    }

    /// Last-used times only move forward, so batches applied out of order do no harm.
    pub fn touch_last_used(&self, used: &[(String, i64)]) -> Result<(), StoreError> {
        for (id, ms) in used {
            self.conn.execute(
                "UPDATE keys SET last_used_at = ?2 \
                 WHERE key_id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                args![id, ms],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Store, TeamSpec};
    use super::*;

    fn spec(alias: &str) -> KeySpec {
        KeySpec {
            alias: Some(alias.into()),
            models: vec!["gpt".into()],
            ..KeySpec::default()
        }
    }

    #[test]
    fn insert_returns_the_secret_once_and_stores_only_its_hash() {
        let dir = super::super::tests::temp_dir("secret-scan");
        let path = dir.join("keys.db");
        let mut s = Store::open(Some(&path)).unwrap();
        let (row, secret) = s.write(|w| w.insert_key(&spec("a"), 5)).unwrap();
        assert_eq!(row.hint, format!("sk-...{}", &secret[secret.len() - 4..]));
        assert!(row.id.starts_with("key_"));
        let record = &s.key_records().unwrap()[0];
        assert_eq!(record.hash, digest(secret.as_bytes()));
        assert_eq!(s.reader().key_by_secret(&secret).unwrap(), Some(row));
        drop(s);
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(dir.join("keys.db-wal")) {
            bytes.extend(wal);
        }
        let hash = digest(secret.as_bytes());
        assert!(
            bytes.windows(32).any(|w| w == hash),
            "the scan sees stored bytes"
        );
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        let body = &secret.as_bytes()[3..];
        assert!(!bytes.windows(body.len()).any(|w| w == body));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn aliases_are_unique_among_store_keys() {
        let mut s = Store::open(None).unwrap();
        s.write(|w| w.insert_key(&spec("a"), 1)).unwrap();
        let err = s.write(|w| w.insert_key(&spec("a"), 2)).unwrap_err();
        assert_eq!(err.fault, Fault::Constraint);
        // Many keys may have no alias.
        s.write(|w| w.insert_key(&KeySpec::default(), 3)).unwrap();
        s.write(|w| w.insert_key(&KeySpec::default(), 4)).unwrap();
        assert_eq!(s.reader().key_count(KeyFilter::default()).unwrap(), 3);
    }

    #[test]
    fn regenerate_keeps_the_id_and_optionally_the_old_secret_for_a_while() {
        let mut s = Store::open(None).unwrap();
        let (row, old) = s.write(|w| w.insert_key(&spec("a"), 1)).unwrap();
        let (again, new) = s.write(|w| w.regenerate_key(&row.id, 60_000, 100)).unwrap();
        assert_eq!(again.id, row.id);
        assert_ne!(new, old);
        assert_eq!(again.previous_until_ms, Some(60_100));
        let rec = &s.key_records().unwrap()[0];
        assert_eq!(rec.hash, digest(new.as_bytes()));
        assert_eq!(rec.previous, Some((digest(old.as_bytes()), 60_100)));
        assert_eq!(s.reader().key_by_secret(&old).unwrap(), None);

        let (_, newest) = s.write(|w| w.regenerate_key(&row.id, 0, 200)).unwrap();
        let rec = &s.key_records().unwrap()[0];
        assert_eq!(rec.hash, digest(newest.as_bytes()));
        assert_eq!(rec.previous, None, "no grace: the old secret stops at once");
    }

    #[test]
    fn records_join_the_team() {
        let mut s = Store::open(None).unwrap();
        let team = TeamSpec {
            models: vec!["gpt".into(), "claude".into()],
            guardrails: vec!["pii".into()],
            blocked: true,
            limits: Limits {
                rpm_limit: Some(7),
                ..Limits::default()
            },
            ..TeamSpec::default()
        };
        s.write(|w| w.insert_team(Some("t1"), &team, 1)).unwrap();
        let mut k = spec("in-team");
        k.team_id = Some("t1".into());
        k.user_id = Some("u".into());
        k.expires_ms = Some(99);
        k.limits.tpm_limit = Some(5);
        k.guardrails = vec!["jailbreak".into(), "pii".into()];
        k.cache = CacheSetting::Off;
        s.write(|w| w.insert_key(&k, 2)).unwrap();
        s.write(|w| w.insert_key(&spec("alone"), 3)).unwrap();
        let recs = s.key_records().unwrap();
        assert_eq!(recs[0].team_models, ["gpt", "claude"]);
        assert!(recs[0].team_blocked && !recs[0].blocked);
        assert_eq!(recs[0].team_limits.as_ref().unwrap().rpm_limit, Some(7));
        assert_eq!(recs[0].limits.tpm_limit, Some(5));
        assert_eq!(recs[0].models, ["gpt"]);
        assert_eq!(recs[0].alias.as_deref(), Some("in-team"));
        assert_eq!(recs[0].user_id.as_deref(), Some("u"));
        assert_eq!(recs[0].expires_ms, Some(99));
        assert_eq!(recs[0].guardrails, ["jailbreak", "pii"]);
        assert_eq!(recs[0].team_guardrails, ["pii"]);
        assert_eq!(recs[0].cache, CacheSetting::Off);
        assert_eq!(recs[1].team_id, None);
        assert!(recs[1].team_models.is_empty() && !recs[1].team_blocked);
        assert!(recs[1].guardrails.is_empty() && recs[1].team_guardrails.is_empty());
        assert_eq!(recs[1].cache, CacheSetting::Follow);
        assert_eq!(recs[1].team_limits, None);
    }

    #[test]
    fn touch_last_used_moves_forward_and_ignores_unknown_ids() {
        let mut s = Store::open(None).unwrap();
        let (row, _) = s.write(|w| w.insert_key(&spec("a"), 1)).unwrap();
        let used = [(row.id.clone(), 50), ("key_unknown".to_owned(), 60)];
        s.touch_last_used(&used).unwrap();
        s.touch_last_used(&[(row.id.clone(), 40)]).unwrap();
        let row = s.reader().key(&row.id).unwrap().unwrap();
        assert_eq!(row.last_used_ms, Some(50));
        assert_eq!(row.updated_ms, 1, "use is not a change");
    }

    #[test]
    fn update_list_and_delete() {
        let mut s = Store::open(None).unwrap();
        let (a, _) = s.write(|w| w.insert_key(&spec("a"), 1)).unwrap();
        let (b, _) = s.write(|w| w.insert_key(&spec("b"), 2)).unwrap();
        let mut changed = a.spec.clone();
        changed.blocked = true;
        changed.tags = vec!["x".into()];
        changed.guardrails = vec!["pii".into()];
        changed.cache = CacheSetting::On(super::super::CacheOverride {
            ttl_s: Some(60),
            scope: Some(crate::config::cache::Scope::Team),
            store_length: None,
        });
        let a2 = s.write(|w| w.update_key(&a.id, &changed, 9)).unwrap();
        assert_eq!((&a2.spec, a2.updated_ms, a2.created_ms), (&changed, 9, 1));
        assert_eq!(s.reader().key(&a.id).unwrap().unwrap().spec, changed);
        assert_eq!(s.key_records().unwrap()[0].cache, changed.cache);
        // Back to following the alias: the column is NULL again.
        changed.cache = CacheSetting::Follow;
        changed.guardrails.clear();
        let a2 = s.write(|w| w.update_key(&a.id, &changed, 9)).unwrap();
        assert_eq!(a2.spec, changed);
        let raw: Option<String> = s
            .lite()
            .query_row("SELECT cache FROM keys WHERE key_id = ?1", [&a.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(raw, None);
        let page = s.reader().keys(KeyFilter::default(), 1, 10).unwrap();
        assert_eq!(page, std::slice::from_ref(&b));
        let by_alias = KeyFilter {
            alias: Some("b"),
            ..KeyFilter::default()
        };
        assert_eq!(s.reader().key_count(by_alias).unwrap(), 1);
        let err = s
            .write(|w| w.delete_keys(&[b.id.clone(), "key_nope".into()]))
            .unwrap_err();
        assert_eq!(err.fault, Fault::NotFound);
        assert!(s.reader().key(&b.id).unwrap().is_some(), "rolled back");
        s.write(|w| w.delete_keys(std::slice::from_ref(&b.id)))
            .unwrap();
        assert!(s.reader().key(&b.id).unwrap().is_none());
    }
}
