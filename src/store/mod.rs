//! The store: virtual keys and teams made through the admin API, the spend ledger and the
//! limits' saved windows, in embedded SQLite (the single-node default) or in PostgreSQL (the
//! shared store of cluster mode, [`pg`]), behind one API: each query is written once (`sql`).
//!
//! One control thread owns the [`Store`]; request-serving shards never touch it. They see keys
//! only as [`KeyRecord`]s, built into their key table by the control thread, which republishes
//! after its own writes and polls [`Store::data_version`] to notice another process's.
//!
//! Invariants: every write runs in one transaction ([`Store::write`]), committed (SQLite: with
//! `synchronous=FULL`) before the caller answers; a key's secret is never stored, only its
//! SHA-256 hash and a masked hint; a database from a newer build is refused untouched (see
//! `schema`).

mod cache_setting;
mod keys;
mod ledger;
pub mod pg;
mod schema;
mod secret;
mod sql;
mod teams;
pub mod time;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub use cache_setting::{CacheOverride, CacheSetting, MAX_TTL_S};
pub use keys::{KeyFilter, KeyRow, KeySpec};
pub use ledger::{LedgerFilter, LedgerRow, SpendGroup, SpendScope, SpendTotal, day_of};
pub use schema::SCHEMA_VERSION;
pub use teams::{TeamRow, TeamSpec};

/// What the request path needs of one key.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyRecord {
    /// Stable id ("key_" + 20 hex chars); never changes, not even on regenerate.
    pub id: String,
    pub alias: Option<String>,
    /// `crate::auth::digest` of the secret.
    pub hash: [u8; 32],
    /// After a regenerate with a grace period: the old secret's hash, and until when (unix ms)
    /// it still works.
    pub previous: Option<([u8; 32], i64)>,
    pub team_id: Option<String>,
    /// Allowed model aliases; empty = all.
    pub models: Vec<String>,
    /// The team's allowed aliases; empty = all (or no team).
    pub team_models: Vec<String>,
    pub expires_ms: Option<i64>,
    /// The key's own flag.
    pub blocked: bool,
    pub team_blocked: bool,
    pub limits: Limits,
    pub team_limits: Option<Limits>,
    pub user_id: Option<String>,
    /// Guardrail policy names, as the admin API checked them; the key's, then its team's.
    pub guardrails: Vec<String>,
    pub team_guardrails: Vec<String>,
    pub cache: CacheSetting,
}

/// Spend and rate limits of a key or team (LiteLLM's field names). Stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub model_rpm_limit: BTreeMap<String, u64>,
    pub model_tpm_limit: BTreeMap<String, u64>,
    pub model_max_budget: BTreeMap<String, f64>,
}

/// Why a store operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The file or directory could not be opened or created, or the OS CSPRNG failed.
    Io,
    /// The database's schema is newer than this build's [`SCHEMA_VERSION`].
    TooNew,
    /// A UNIQUE or FOREIGN KEY constraint refused the write.
    Constraint,
    /// The row to change does not exist.
    NotFound,
    /// A stored value is not what this build wrote (bad JSON, wrong hash length).
    Corrupt,
    /// Any other failure of the database.
    Sql,
    /// PostgreSQL is unreachable (or went away mid-call): try again once it is back.
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    pub fault: Fault,
    pub message: String,
}

impl StoreError {
    pub fn new(fault: Fault, message: impl Into<String>) -> Self {
        StoreError {
            fault,
            message: message.into(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let fault = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => Fault::Constraint,
            _ => match e {
                rusqlite::Error::FromSqlConversionFailure(..) => Fault::Corrupt,
                _ => Fault::Sql,
            },
        };
        StoreError::new(fault, e.to_string())
    }
}

pub struct Store {
    db: Db,
    version: u32,
}

enum Db {
    Lite {
        conn: Connection,
        /// The absolute path, or `None` in memory.
        path: Option<String>,
        journal: String,
    },
    Pg(Box<pg::Pg>),
}

/// Read access: queries over the connection, or over a write's transaction.
pub struct Reader<'c> {
    conn: sql::Conn<'c>,
}

/// Write access inside one transaction (see [`Store::write`]); reads see the writes made so far.
pub struct Writer<'c> {
    read: Reader<'c>,
}

impl<'c> std::ops::Deref for Writer<'c> {
    type Target = Reader<'c>;
    fn deref(&self) -> &Reader<'c> {
        &self.read
    }
}

/// Whether the store can be written now, and what waits to be (for `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// Ledger rows in the spool (PostgreSQL only).
    pub spooled: u64,
}

// === impl Store ===

impl Store {
    /// `None`: an in-memory database. `Some(path)`: a file, its parent directory created if
    /// missing, in WAL mode. Refuses (and leaves untouched) a database from a newer build.
    pub fn open(path: Option<&Path>) -> Result<Store, StoreError> {
        let Some(path) = path else {
            return Store::init(Connection::open_in_memory()?, None);
        };
        let shown = absolute(path)?;
        let opened = Connection::open(path)
            .map_err(StoreError::from)
            .and_then(|conn| Store::init(conn, Some(shown.clone())));
        opened.map_err(|e| match e.fault {
            Fault::TooNew => e,
            fault => StoreError::new(fault, format!("cannot open store {shown}: {e}")),
        })
    }

    fn init(mut conn: Connection, path: Option<String>) -> Result<Store, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let label = path.as_deref().unwrap_or("in memory");
        // Checked before WAL is switched on: that would rewrite the header of a file we refuse.
        schema::refuse_newer(&conn, label)?;
        let journal = if path.is_some() {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?
        } else {
            "memory".to_owned()
        };
        let version = schema::migrate(&mut conn, label)?;
        Ok(Store {
            db: Db::Lite {
                conn,
                path,
                journal: journal.to_uppercase(),
            },
            version,
        })
    }

    /// For the start log line.
    pub fn describe(&self) -> String {
        match &self.db {
            Db::Lite {
                path: Some(p),
                journal,
                ..
            } => format!("SQLite {p} (schema v{}, {journal})", self.version),
            Db::Lite { path: None, .. } => format!(
                "in memory (schema v{}; keys made through the admin API are lost on exit)",
                self.version
            ),
            Db::Pg(pg) => {
                let schema = match self.version {
                    0 => "schema not checked yet".to_owned(),
                    v => format!("schema v{v}"),
                };
                let spool = pg.spool.path().display();
                format!("PostgreSQL {} ({schema}; ledger spool {spool})", pg.shown)
            }
        }
    }

    /// Changes when another connection or process has committed a change of keys or teams:
    /// SQLite's `PRAGMA data_version`, PostgreSQL's change counter (which every admin write
    /// bumps, in its transaction).
    pub fn data_version(&self) -> Result<i64, StoreError> {
        match &self.db {
            Db::Lite { conn, .. } => {
                Ok(conn.pragma_query_value(None, "data_version", |r| r.get(0))?)
            }
            Db::Pg(_) => self
                .reader()
                .conn
                .value(schema::PG_DATA_VERSION, sql::args![]),
        }
    }

    /// Schema version of the open database (0: PostgreSQL not reached yet).
    pub fn schema_version(&self) -> u32 {
        self.version
    }

    /// Every key not deleted (blocked and expired ones included), joined with its team. On
    /// PostgreSQL while it is away: the last ones read (see `pg::snapshot`), if any.
    pub fn key_records(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let read = self.reader().key_records();
        let Db::Pg(pg) = &self.db else { return read };
        match read {
            Ok(records) => {
                pg.snapshot.borrow_mut().save(&records);
                Ok(records)
            }
            // Never read (a start while it is away, without a snapshot): the config's keys only.
            Err(e) if e.fault == Fault::Unavailable => Ok(pg.known_keys().unwrap_or_default()),
            Err(e) => Err(e),
        }
    }

    /// Records last-used times (unix ms) for key ids; ignores unknown ids. One transaction.
    pub fn touch_last_used(&mut self, used: &[(String, i64)]) -> Result<(), StoreError> {
        self.transact(false, |w| w.touch_last_used(used))
    }

    /// The SQLite connection, for tests that look under the store.
    #[cfg(test)]
    pub(crate) fn lite(&self) -> &Connection {
        match &self.db {
            Db::Lite { conn, .. } => conn,
            Db::Pg(_) => panic!("not a SQLite store"),
        }
    }

    pub fn reader(&self) -> Reader<'_> {
        let conn = match &self.db {
            Db::Lite { conn, .. } => sql::Conn::Lite(conn),
            Db::Pg(pg) => sql::Conn::Pg(&pg.link),
        };
        Reader { conn }
    }

    /// Runs `f` in one transaction (SQLite: IMMEDIATE): committed if it returns `Ok`, rolled
    /// back if not. A change of keys or teams: on PostgreSQL it bumps the change counter and
    /// notifies the other replicas, in the same transaction.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact(true, f)
    }

    /// [`Store::write`]; `change` says whether other replicas must hear of it.
    fn transact<T, E: From<StoreError>>(
        &mut self,
        change: bool,
        f: impl FnOnce(&Writer<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &mut self.db {
            Db::Lite { conn, .. } => {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(StoreError::from)?;
                let out = f(&Writer {
                    read: Reader {
                        conn: sql::Conn::Lite(&tx),
                    },
                })?;
                tx.commit().map_err(StoreError::from)?;
                Ok(out)
            }
            Db::Pg(pg) => {
                let link = &pg.link;
                link.borrow_mut().batch("BEGIN")?;
                let w = Writer {
                    read: Reader {
                        conn: sql::Conn::Pg(link),
                    },
                };
                let out = f(&w).and_then(|out| {
                    if change {
                        w.conn.execute(schema::PG_BUMP, sql::args![])?;
                        link.borrow_mut()
                            .batch(&format!("NOTIFY {}", pg::CHANNEL))?;
                    }
                    link.borrow_mut().batch("COMMIT")?;
                    Ok(out)
                });
                if out.is_err() {
                    let _ = link.borrow_mut().batch("ROLLBACK");
                }
                out
            }
        }
    }
}

/// The absolute form of a store path, its parent directory created if missing.
fn absolute(path: &Path) -> Result<String, StoreError> {
    let shown = path.display();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let failed = |e: std::io::Error| {
        let msg = format!("cannot create the directory of store {shown}: {e}");
        StoreError::new(Fault::Io, msg)
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let dir = std::fs::canonicalize(dir).map_err(failed)?;
    Ok(match path.file_name() {
        Some(name) => dir.join(name).display().to_string(),
        None => shown.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "shardgate-store-{name}-{}-{}",
            std::process::id(),
            secret::new_id("").expect("random")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn in_memory_describes_itself_as_volatile() {
        let s = Store::open(None).unwrap();
        assert_eq!(s.schema_version(), SCHEMA_VERSION);
        assert_eq!(
            s.describe(),
            "in memory (schema v4; keys made through the admin API are lost on exit)"
        );
        assert!(s.key_records().unwrap().is_empty());
    }

    #[test]
    fn file_store_is_wal_creates_its_directory_and_keeps_data() {
        let dir = temp_dir("reopen");
        let path = dir.join("nested").join("keys.db");
        let mut s = Store::open(Some(&path)).unwrap();
        let abs = std::fs::canonicalize(&path).unwrap();
        assert_eq!(
            s.describe(),
            format!("SQLite {} (schema v4, WAL)", abs.display())
        );
        let mode: String = s
            .lite()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = s
            .lite()
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = s
            .lite()
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let (row, _) = s
            .write(|w| w.insert_key(&KeySpec::default(), 1_000))
            .unwrap();
        drop(s);
        let s = Store::open(Some(&path)).unwrap();
        let records = s.key_records().unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].id, row.id);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn data_version_moves_when_another_connection_commits() {
        let dir = temp_dir("data-version");
        let path = dir.join("keys.db");
        let mut s = Store::open(Some(&path)).unwrap();
        let before = s.data_version().unwrap();
        s.write(|w| w.insert_key(&KeySpec::default(), 1)).unwrap();
        assert_eq!(
            s.data_version().unwrap(),
            before,
            "own commits do not count"
        );
        let other = Store::open(Some(&path)).unwrap();
        other
            .lite()
            .execute("UPDATE keys SET blocked = 1", [])
            .unwrap();
        assert_ne!(s.data_version().unwrap(), before);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_write_rolls_back() {
        let mut s = Store::open(None).unwrap();
        let r: Result<(), StoreError> = s.write(|w| {
            w.insert_key(&KeySpec::default(), 1)?;
            Err(StoreError::new(Fault::NotFound, "abandon"))
        });
        assert_eq!(r.unwrap_err().fault, Fault::NotFound);
        assert!(s.key_records().unwrap().is_empty());
    }

    #[test]
    fn an_unopenable_path_is_refused_naming_it() {
        let dir = temp_dir("unopenable");
        std::fs::create_dir_all(dir.join("db-is-a-dir")).unwrap();
        let err = Store::open(Some(&dir.join("db-is-a-dir"))).err().unwrap();
        assert!(err.to_string().starts_with("cannot open store /"), "{err}");
        assert!(err.to_string().contains("db-is-a-dir"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
