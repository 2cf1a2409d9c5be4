//! Team rows: a team groups keys under one model list, blocked flag, set of limits and list of
//! guardrail policies (run after each key's own).
//!
//! Deleting a team deletes its keys (as LiteLLM does); the schema's `ON DELETE CASCADE`
//! guarantees it, and [`Writer::delete_teams`] reports which keys went.

use serde_json::{Map, Value};

use super::sql::{Row, args, json_text};
use super::{Fault, Limits, Reader, StoreError, Writer, secret};

/// What the admin API may set on a team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeamSpec {
    pub alias: Option<String>,
    /// Allowed model aliases; empty = all.
    pub models: Vec<String>,
    pub metadata: Map<String, Value>,
    pub blocked: bool,
    pub limits: Limits,
    /// Guardrail policy names its keys run after their own (checked by the admin API only).
    pub guardrails: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TeamRow {
    pub id: String,
    pub spec: TeamSpec,
    pub spend: f64,
    pub created_ms: i64,
    pub updated_ms: i64,
}

const ROW: &str = "SELECT team_id, team_alias, models, metadata, blocked, limits, spend, \
    created_at, updated_at, guardrails FROM teams";

fn team_row(r: Row) -> Result<TeamRow, StoreError> {
    Ok(TeamRow {
        id: r.get(0)?,
        spec: TeamSpec {
            alias: r.get(1)?,
            models: r.json(2)?,
            metadata: r.json(3)?,
            blocked: r.get(4)?,
            limits: r.json(5)?,
            guardrails: r.json(9)?,
        },
        spend: r.get(6)?,
        created_ms: r.get(7)?,
        updated_ms: r.get(8)?,
    })
}

// === impl Reader ===

impl Reader<'_> {
    pub fn team(&self, id: &str) -> Result<Option<TeamRow>, StoreError> {
        let sql = format!("{ROW} WHERE team_id = ?1");
        self.conn.query_opt(&sql, args![id], team_row)
    }

    pub fn team_by_alias(&self, alias: &str) -> Result<Option<TeamRow>, StoreError> {
        let sql = format!("{ROW} WHERE team_alias = ?1");
        self.conn.query_opt(&sql, args![alias], team_row)
    }

    /// Every team, oldest first.
    pub fn teams(&self) -> Result<Vec<TeamRow>, StoreError> {
        let sql = format!("{ROW} ORDER BY created_at, rowid");
        self.conn.query(&sql, args![], team_row)
    }

    fn team_key_ids(&self, id: &str) -> Result<Vec<String>, StoreError> {
        self.conn.query(
            "SELECT key_id FROM keys WHERE team_id = ?1 ORDER BY created_at, rowid",
            args![id],
            |r| r.get(0),
        )
    }
}

// === impl Writer ===

impl Writer<'_> {
    /// Makes a team, with id `id` or a generated "team_" + 20 hex chars.
    pub fn insert_team(
        &self,
        id: Option<&str>,
        spec: &TeamSpec,
        now_ms: i64,
    ) -> Result<TeamRow, StoreError> {
        let id = match id {
            Some(id) => id.to_owned(),
            None => secret::new_id("team_")?,
        };
        self.conn.execute(
            "INSERT INTO teams (team_id, team_alias, models, metadata, blocked, limits, \
             guardrails, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            args![
                id,
                spec.alias,
                json_text(&spec.models),
                json_text(&spec.metadata),
                spec.blocked,
                json_text(&spec.limits),
                json_text(&spec.guardrails),
                now_ms,
            ],
        )?;
        self.existing_team(&id)
    }

    fn existing_team(&self, id: &str) -> Result<TeamRow, StoreError> {
        self.team(id)?
            .ok_or_else(|| StoreError::new(Fault::NotFound, format!("no team {id}")))
    }

    /// Replaces everything the admin API may set on team `id`.
    pub fn update_team(
        &self,
        id: &str,
        spec: &TeamSpec,
        now_ms: i64,
    ) -> Result<TeamRow, StoreError> {
        self.conn.execute(
            "UPDATE teams SET team_alias = ?2, models = ?3, metadata = ?4, blocked = ?5, \
             limits = ?6, guardrails = ?7, updated_at = ?8 WHERE team_id = ?1",
            args![
                id,
                spec.alias,
                json_text(&spec.models),
                json_text(&spec.metadata),
                spec.blocked,
                json_text(&spec.limits),
                json_text(&spec.guardrails),
                now_ms,
            ],
        )?;
        self.existing_team(id)
    }

    /// Deletes teams and their keys; returns the ids of the keys deleted. Every team must exist.
    pub fn delete_teams(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        for id in ids {
            keys.extend(self.team_key_ids(id)?);
            if self
                .conn
                .execute("DELETE FROM teams WHERE team_id = ?1", args![id])?
                == 0
            {
                return Err(StoreError::new(Fault::NotFound, format!("no team {id}")));
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{KeySpec, Store};
    use super::*;

    #[test]
    fn teams_round_trip_and_aliases_are_unique() {
        let mut s = Store::open(None).unwrap();
        let spec = TeamSpec {
            alias: Some("ops".into()),
            models: vec!["gpt".into()],
            guardrails: vec!["pii".into(), "jailbreak".into()],
            metadata: serde_json::json!({"cost_center": 7})
                .as_object()
                .unwrap()
                .clone(),
            ..TeamSpec::default()
        };
        let t = s.write(|w| w.insert_team(None, &spec, 3)).unwrap();
        assert!(t.id.starts_with("team_") && t.id.len() == 25, "{}", t.id);
        assert_eq!((&t.spec, t.spend, t.created_ms), (&spec, 0.0, 3));
        let err = s
            .write(|w| w.insert_team(Some("other"), &spec, 4))
            .unwrap_err();
        assert_eq!(err.fault, Fault::Constraint);
        let err = s.write(|w| w.insert_team(Some(&t.id), &TeamSpec::default(), 4));
        assert_eq!(err.unwrap_err().fault, Fault::Constraint, "duplicate id");
        let mut changed = spec.clone();
        changed.blocked = true;
        changed.guardrails = vec!["toxicity".into()];
        let t2 = s.write(|w| w.update_team(&t.id, &changed, 8)).unwrap();
        assert_eq!((t2.spec.blocked, t2.updated_ms), (true, 8));
        assert_eq!(t2.spec.guardrails, ["toxicity"]);
        assert_eq!(s.reader().team_by_alias("ops").unwrap(), Some(t2.clone()));
        assert_eq!(s.reader().teams().unwrap(), [t2]);
    }

    #[test]
    fn deleting_a_team_takes_its_keys_all_or_nothing() {
        let mut s = Store::open(None).unwrap();
        s.write(|w| w.insert_team(Some("t"), &TeamSpec::default(), 1))
            .unwrap();
        let in_team = KeySpec {
            team_id: Some("t".into()),
            ..KeySpec::default()
        };
        let (k1, _) = s.write(|w| w.insert_key(&in_team, 2)).unwrap();
        let (k2, _) = s.write(|w| w.insert_key(&KeySpec::default(), 3)).unwrap();
        let ids = ["t".to_owned(), "missing".to_owned()];
        let err = s.write(|w| w.delete_teams(&ids)).unwrap_err();
        assert_eq!(err.fault, Fault::NotFound);
        assert_eq!(s.key_records().unwrap().len(), 2, "rolled back");
        let gone = s.write(|w| w.delete_teams(&ids[..1])).unwrap();
        assert_eq!(gone, [k1.id]);
        let left: Vec<_> = s.key_records().unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(left, [k2.id]);
    }

    #[test]
    fn a_key_cannot_name_a_missing_team() {
        let mut s = Store::open(None).unwrap();
        let spec = KeySpec {
            team_id: Some("ghost".into()),
            ..KeySpec::default()
        };
        let err = s.write(|w| w.insert_key(&spec, 1)).unwrap_err();
        assert_eq!(err.fault, Fault::Constraint);
    }
}
