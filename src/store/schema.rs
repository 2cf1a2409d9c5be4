//! The schema, as a list of versioned migrations tracked in `PRAGMA user_version` (SQLite) or
//! the `shardgate_meta` row `schema` (PostgreSQL).
//!
//! Migration `i` (0-based) takes a database from version `i` to `i + 1`, in one transaction
//! with the version bump, so a crash leaves either the old schema or the new one. Steps are
//! append-only: a released step is never edited, a change is a new step. A database whose
//! version is newer than this build's is refused before anything writes to it. Each step is
//! written for each backend, side by side (PostgreSQL's types for SQLite's: BOOLEAN, BIGINT,
//! DOUBLE PRECISION, BYTEA; a `rowid` column where SQLite has its implicit one), and both
//! backends share the version numbers: the same version is the same tables and columns.
//!
//! Times are unix milliseconds. Limits are one JSON column (`store::Limits`); `spend` and
//! `budget_reset_at` are columns, so a budget check or reset is one indexed UPDATE.

use std::cell::RefCell;

use rusqlite::{Connection, TransactionBehavior};

use super::pg::Link;
use super::sql::{Conn, args};
use super::{Fault, StoreError};

const V1: &str = "
CREATE TABLE teams (
    team_id         TEXT PRIMARY KEY NOT NULL,
    team_alias      TEXT UNIQUE,
    models          TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    blocked         INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    limits          TEXT NOT NULL DEFAULT '{}',
    spend           REAL NOT NULL DEFAULT 0,
    budget_reset_at INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
    key_id               TEXT PRIMARY KEY NOT NULL,
    key_hash             BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    previous_hash        BLOB CHECK (previous_hash IS NULL OR length(previous_hash) = 32),
    previous_valid_until INTEGER,
    key_alias            TEXT UNIQUE,
    key_hint             TEXT NOT NULL,
    team_id              TEXT REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id              TEXT,
    models               TEXT NOT NULL DEFAULT '[]',
    metadata             TEXT NOT NULL DEFAULT '{}',
    tags                 TEXT NOT NULL DEFAULT '[]',
    expires_at           INTEGER,
    blocked              INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    limits               TEXT NOT NULL DEFAULT '{}',
    spend                REAL NOT NULL DEFAULT 0,
    budget_reset_at      INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    last_used_at         INTEGER,
    CHECK ((previous_hash IS NULL) = (previous_valid_until IS NULL))
) STRICT;

CREATE INDEX keys_by_team ON keys (team_id);
";

/// The spend ledger (`store::ledger`). Raw rows are packed, one `spend_logs` row per appended
/// batch (`ledger::pack`), with the UTC days and times it spans so listings and pruning read
/// only the batches of their days. Rollup key columns hold '' for "none" so the primary key
/// groups them; no foreign keys: ledger rows outlive the keys and teams they name.
const V2: &str = "
CREATE TABLE spend_logs (
    batch     INTEGER PRIMARY KEY,
    first_day INTEGER NOT NULL,
    last_day  INTEGER NOT NULL,
    first_ts  INTEGER NOT NULL,
    last_ts   INTEGER NOT NULL,
    rows      INTEGER NOT NULL,
    data      BLOB NOT NULL
) STRICT;

CREATE INDEX spend_logs_by_day ON spend_logs (last_day);

CREATE TABLE spend_daily (
    day                INTEGER NOT NULL,
    key_id             TEXT NOT NULL DEFAULT '',
    team_id            TEXT NOT NULL DEFAULT '',
    end_user           TEXT NOT NULL DEFAULT '',
    alias              TEXT NOT NULL DEFAULT '',
    provider           TEXT NOT NULL DEFAULT '',
    requests           INTEGER NOT NULL DEFAULT 0,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    cost               REAL NOT NULL DEFAULT 0,
    unpriced           INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, team_id, end_user, alias, provider)
) STRICT, WITHOUT ROWID;

CREATE INDEX spend_daily_by_key ON spend_daily (key_id, day);
CREATE INDEX spend_daily_by_team ON spend_daily (team_id, day);
CREATE INDEX spend_daily_by_user ON spend_daily (end_user, day);

CREATE TABLE limit_usage (
    scope        TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    used         REAL NOT NULL,
    PRIMARY KEY (scope, window_start)
) STRICT, WITHOUT ROWID;
";

/// Per-key and per-team guardrail policy names (JSON lists, checked by the admin API, not
/// against the config: the request path resolves them), and a key's own cache setting
/// (`store::CacheSetting`'s JSON; NULL follows the alias).
const V3: &str = "
ALTER TABLE keys ADD COLUMN guardrails TEXT NOT NULL DEFAULT '[]';
ALTER TABLE keys ADD COLUMN cache TEXT;
ALTER TABLE teams ADD COLUMN guardrails TEXT NOT NULL DEFAULT '[]';
";

/// The origin of a ledger batch (`store::pg`): a batch spooled while PostgreSQL was away is
/// stored under the name its first try had, at most once. NULL for SQLite's own batches.
const V4: &str = "
ALTER TABLE spend_logs ADD COLUMN origin TEXT;
CREATE UNIQUE INDEX spend_logs_by_origin ON spend_logs (origin);
";

/// The migration steps, oldest first.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

const PG_V1: &str = "
CREATE TABLE teams (
    team_id         TEXT PRIMARY KEY NOT NULL,
    team_alias      TEXT UNIQUE,
    models          TEXT NOT NULL DEFAULT '[]',
    metadata        TEXT NOT NULL DEFAULT '{}',
    blocked         BOOLEAN NOT NULL DEFAULT FALSE,
    limits          TEXT NOT NULL DEFAULT '{}',
    spend           DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    rowid           BIGSERIAL NOT NULL
);

CREATE TABLE keys (
    key_id               TEXT PRIMARY KEY NOT NULL,
    key_hash             BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    previous_hash        BYTEA CHECK (previous_hash IS NULL OR length(previous_hash) = 32),
    previous_valid_until BIGINT,
    key_alias            TEXT UNIQUE,
    key_hint             TEXT NOT NULL,
    team_id              TEXT REFERENCES teams (team_id) ON DELETE CASCADE,
    user_id              TEXT,
    models               TEXT NOT NULL DEFAULT '[]',
    metadata             TEXT NOT NULL DEFAULT '{}',
    tags                 TEXT NOT NULL DEFAULT '[]',
    expires_at           BIGINT,
    blocked              BOOLEAN NOT NULL DEFAULT FALSE,
    limits               TEXT NOT NULL DEFAULT '{}',
    spend                DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_reset_at      BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    last_used_at         BIGINT,
    rowid                BIGSERIAL NOT NULL,
    CHECK ((previous_hash IS NULL) = (previous_valid_until IS NULL))
);

CREATE INDEX keys_by_team ON keys (team_id);
";

const PG_V2: &str = "
CREATE TABLE spend_logs (
    batch     BIGSERIAL PRIMARY KEY,
    first_day BIGINT NOT NULL,
    last_day  BIGINT NOT NULL,
    first_ts  BIGINT NOT NULL,
    last_ts   BIGINT NOT NULL,
    rows      BIGINT NOT NULL,
    data      BYTEA NOT NULL
);

CREATE INDEX spend_logs_by_day ON spend_logs (last_day);

CREATE TABLE spend_daily (
    day                BIGINT NOT NULL,
    key_id             TEXT NOT NULL DEFAULT '',
    team_id            TEXT NOT NULL DEFAULT '',
    end_user           TEXT NOT NULL DEFAULT '',
    alias              TEXT NOT NULL DEFAULT '',
    provider           TEXT NOT NULL DEFAULT '',
    requests           BIGINT NOT NULL DEFAULT 0,
    input_tokens       BIGINT NOT NULL DEFAULT 0,
    output_tokens      BIGINT NOT NULL DEFAULT 0,
    cache_read_tokens  BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens   BIGINT NOT NULL DEFAULT 0,
    cost               DOUBLE PRECISION NOT NULL DEFAULT 0,
    unpriced           BIGINT NOT NULL DEFAULT 0,
    errors             BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, team_id, end_user, alias, provider)
);

CREATE INDEX spend_daily_by_key ON spend_daily (key_id, day);
CREATE INDEX spend_daily_by_team ON spend_daily (team_id, day);
CREATE INDEX spend_daily_by_user ON spend_daily (end_user, day);

CREATE TABLE limit_usage (
    scope        TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    used         DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, window_start)
);
";

/// PostgreSQL's steps: the same versions as [`MIGRATIONS`] (V3 and V4 are plain SQL both read
/// alike).
const PG_MIGRATIONS: &[&str] = &[PG_V1, PG_V2, V3, V4];

/// The highest schema version this build knows.
pub const SCHEMA_VERSION: u32 = 4;

const _: () = assert!(MIGRATIONS.len() == SCHEMA_VERSION as usize);
const _: () = assert!(PG_MIGRATIONS.len() == SCHEMA_VERSION as usize);

/// PostgreSQL's bookkeeping, outside the versioned steps: the schema version, and the change
/// counter every write of keys or teams bumps (what replicas poll beside `LISTEN`).
const PG_META: &str = "
CREATE TABLE IF NOT EXISTS shardgate_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO shardgate_meta (name, value) VALUES ('schema', 0), ('data', 0)
    ON CONFLICT (name) DO NOTHING;
";
pub(super) const PG_DATA_VERSION: &str = "SELECT value FROM shardgate_meta WHERE name = 'data'";
pub(super) const PG_BUMP: &str = "UPDATE shardgate_meta SET value = value + 1 WHERE name = 'data'";
/// Serialises migrations of replicas starting together (a transaction-scoped advisory lock).
const PG_LOCK: &str = "SELECT pg_advisory_xact_lock(7411963)";

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

fn too_new(label: &str, found: u32) -> StoreError {
    StoreError::new(
        Fault::TooNew,
        format!(
            "store {label} has schema version {found}, newer than this shardgate understands \
             ({SCHEMA_VERSION}): upgrade shardgate, or point the store at another database"
        ),
    )
}

/// Refuses a database from a newer build (a read only: nothing is written).
pub(super) fn refuse_newer(conn: &Connection, label: &str) -> Result<(), StoreError> {
    match user_version(conn)? {
        v if v > SCHEMA_VERSION => Err(too_new(label, v)),
        _ => Ok(()),
    }
}

/// Applies the steps the database lacks; returns its version.
pub(super) fn migrate(conn: &mut Connection, label: &str) -> Result<u32, StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read under the write lock: another process may have migrated meanwhile.
        let v = user_version(&tx)?;
        if v > SCHEMA_VERSION {
            return Err(too_new(label, v));
        }
        let Some(step) = MIGRATIONS.get(v as usize) else {
            return Ok(v);
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
    }
}

/// The schema version of a PostgreSQL database (0: none yet), read without writing.
fn pg_version(conn: Conn) -> Result<u32, StoreError> {
    let meta: Option<String> = conn.value(
        "SELECT CAST(to_regclass('shardgate_meta') AS TEXT)",
        args![],
    )?;
    if meta.is_none() {
        return Ok(0);
    }
    let v: Option<i64> = conn.query_opt(
        "SELECT value FROM shardgate_meta WHERE name = 'schema'",
        args![],
        |r| r.get(0),
    )?;
    Ok(v.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)))
}

/// [`migrate`] for PostgreSQL: refuses a newer database before writing, then applies each
/// missing step in its own transaction under an advisory lock.
pub(super) fn migrate_pg(link: &RefCell<Link>, label: &str) -> Result<u32, StoreError> {
    let conn = Conn::Pg(link);
    match pg_version(conn)? {
        v if v > SCHEMA_VERSION => return Err(too_new(label, v)),
        _ => {}
    }
    loop {
        link.borrow_mut()
            .batch(&format!("BEGIN; {PG_LOCK}; {PG_META}"))?;
        let step = pg_version(conn).and_then(|v| {
            if v > SCHEMA_VERSION {
                return Err(too_new(label, v));
            }
            let Some(step) = PG_MIGRATIONS.get(v as usize) else {
                return Ok(None);
            };
            link.borrow_mut().batch(step)?;
            conn.execute(
                "UPDATE shardgate_meta SET value = ?1 WHERE name = 'schema'",
                args![i64::from(v) + 1],
            )?;
            Ok(Some(v + 1))
        });
        match step {
            Ok(done) => {
                link.borrow_mut().batch("COMMIT")?;
                if done.is_none() {
                    return pg_version(conn);
                }
            }
            Err(e) => {
                let _ = link.borrow_mut().batch("ROLLBACK");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;
    use super::super::tests::temp_dir;
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn migrates_an_empty_database_to_the_latest_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(user_version(&conn).unwrap(), 0);
        assert_eq!(migrate(&mut conn, "test").unwrap(), SCHEMA_VERSION);
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(
            tables(&conn),
            ["keys", "limit_usage", "spend_daily", "spend_logs", "teams"]
        );
        // Idempotent: a second run finds nothing to do.
        assert_eq!(migrate(&mut conn, "test").unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_file_gains_the_ledger_and_keeps_its_keys() {
        let dir = temp_dir("v1-to-v2");
        let path = dir.join("keys.db");
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO teams (team_id, created_at, updated_at) VALUES ('t', 1, 1);
             INSERT INTO keys (key_id, key_hash, key_hint, team_id, spend, created_at, updated_at)
             VALUES ('key_old', zeroblob(32), 'sk-...old1', 't', 1.5, 1, 1);",
        )
        .unwrap();
        drop(conn);

        let mut s = Store::open(Some(&path)).unwrap();
        assert_eq!(s.schema_version(), SCHEMA_VERSION);
        assert_eq!(tables(s.lite()).len(), 5);
        let records = s.key_records().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            (records[0].id.as_str(), records[0].team_id.as_deref()),
            ("key_old", Some("t"))
        );
        let row: super::super::LedgerRow = super::super::LedgerRow {
            request_id: "r".into(),
            key_id: Some("key_old".into()),
            team_id: Some("t".into()),
            cost_usd: Some(0.5),
            ..Default::default()
        };
        s.append_ledger(&[row]).unwrap();
        assert_eq!(s.reader().key("key_old").unwrap().unwrap().spend, 2.0);
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(
            (s.schema_version(), s.ledger_count().unwrap()),
            (SCHEMA_VERSION, 1)
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_version_2_file_gains_guardrails_and_cache_and_keeps_its_rows() {
        let dir = temp_dir("v2-to-v3");
        let path = dir.join("keys.db");
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO teams (team_id, models, created_at, updated_at)
             VALUES ('t', '[\"gpt\"]', 1, 1);
             INSERT INTO keys (key_id, key_hash, key_hint, team_id, models, spend, created_at,
                               updated_at)
             VALUES ('key_old', zeroblob(32), 'sk-...old1', 't', '[\"gpt\"]', 1.5, 1, 1);",
        )
        .unwrap();
        drop(conn);

        let mut s = Store::open(Some(&path)).unwrap();
        assert_eq!(s.schema_version(), SCHEMA_VERSION);
        let rec = &s.key_records().unwrap()[0];
        assert_eq!(
            (rec.id.as_str(), rec.team_id.as_deref()),
            ("key_old", Some("t"))
        );
        assert_eq!(
            (rec.models.as_slice(), rec.team_models.as_slice()),
            (&["gpt".to_owned()][..], &["gpt".to_owned()][..])
        );
        assert!(rec.guardrails.is_empty() && rec.team_guardrails.is_empty());
        assert_eq!(rec.cache, super::super::CacheSetting::Follow);
        let row = s.reader().key("key_old").unwrap().unwrap();
        assert_eq!((row.spend, row.hint.as_str()), (1.5, "sk-...old1"));
        assert!(row.spec.guardrails.is_empty());
        let team = s.reader().team("t").unwrap().unwrap();
        assert!(team.spec.guardrails.is_empty());
        // The new columns take writes.
        let mut spec = row.spec.clone();
        spec.guardrails = vec!["pii".into()];
        s.write(|w| w.update_key("key_old", &spec, 2)).unwrap();
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        assert_eq!(s.key_records().unwrap()[0].guardrails, ["pii"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_newer_database_is_refused_and_left_unchanged() {
        let dir = temp_dir("too-new");
        let path = dir.join("keys.db");
        drop(Store::open(Some(&path)).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();

        let err = Store::open(Some(&path)).err().expect("refused");
        assert_eq!(err.fault, Fault::TooNew);
        let abs = std::fs::canonicalize(&path).unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "store {} has schema version 7, newer than this shardgate understands (4): \
                 upgrade shardgate, or point the store at another database",
                abs.display()
            )
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "file untouched");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 7);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_newer_rollback_journal_database_is_not_switched_to_wal() {
        let dir = temp_dir("too-new-delete");
        let path = dir.join("keys.db");
        std::fs::create_dir_all(&dir).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 9;")
            .unwrap();
        drop(conn);
        let before = std::fs::read(&path).unwrap();
        assert_eq!(Store::open(Some(&path)).err().unwrap().fault, Fault::TooNew);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
