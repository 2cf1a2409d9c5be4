//! One way to run a statement on either backend, the SQLite connection or the PostgreSQL
//! client, so each query of `keys`, `teams` and `ledger` is written once.
//!
//! Statements are written in the dialect both understand, with SQLite's `?N` placeholders
//! (turned into PostgreSQL's `$N` here); where the two differ (column types, DDL) they stand
//! side by side in `schema`. PostgreSQL types a parameter by its use, so one only tested for
//! NULL is cast (`CAST(?1 AS TEXT) IS NULL`). Values go in as [`Param`] (both crates' `ToSql`)
//! and come out through [`Row::get`] (both crates' `FromSql`). A failure of either maps to one
//! [`StoreError`]; a lost PostgreSQL connection maps to [`Fault::Unavailable`] and drops the
//! client, so every call fails fast until `pg` reconnects.

use std::cell::RefCell;

use serde::de::DeserializeOwned;

use super::pg::Link;
use super::{Fault, StoreError};

/// A value both backends can bind.
pub trait Param: rusqlite::ToSql + postgres::types::ToSql + Sync {}
impl<T: rusqlite::ToSql + postgres::types::ToSql + Sync> Param for T {}

/// `args![a, b]`: a statement's parameters, for either backend.
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$(&$v as &dyn $crate::store::sql::Param),*][..] };
}
pub(crate) use args;

/// A value both backends can read.
pub trait Col: Sized {
    fn lite(r: &rusqlite::Row, i: usize) -> Result<Self, StoreError>;
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError>;
}

impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Col for T {
    fn lite(r: &rusqlite::Row, i: usize) -> Result<Self, StoreError> {
        Ok(r.get(i)?)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, StoreError> {
        r.try_get(i)
            .map_err(|e| StoreError::new(Fault::Corrupt, format!("column {i}: {e}")))
    }
}

/// One result row of either backend.
#[derive(Clone, Copy)]
pub enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    pub fn get<T: Col>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Lite(r) => T::lite(r, i),
            Row::Pg(r) => T::pg(r, i),
        }
    }

    /// A JSON text column.
    pub fn json<T: DeserializeOwned>(&self, i: usize) -> Result<T, StoreError> {
        let text: String = self.get(i)?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::new(Fault::Corrupt, format!("column {i}: {e}")))
    }

    /// A SHA-256 column (a 32-byte blob).
    pub fn hash(&self, i: usize) -> Result<Option<[u8; 32]>, StoreError> {
        let bytes: Option<Vec<u8>> = self.get(i)?;
        bytes
            .map(|b| b.try_into())
            .transpose()
            .map_err(|_| StoreError::new(Fault::Corrupt, format!("column {i}: not 32 bytes")))
    }
}

/// The connection a [`super::Reader`] or [`super::Writer`] runs its statements on.
#[derive(Clone, Copy)]
pub enum Conn<'c> {
    Lite(&'c rusqlite::Connection),
    Pg(&'c RefCell<Link>),
}

/// `?N` placeholders as PostgreSQL's `$N` (the statements hold no `?` in strings).
pub fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

impl Conn<'_> {
    /// Runs one statement; returns the rows it changed.
    pub fn execute(&self, sql: &str, args: &[&dyn Param]) -> Result<u64, StoreError> {
        match self {
            Conn::Lite(c) => {
                let args: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| *a as _).collect();
                Ok(c.prepare_cached(sql)?.execute(&args[..])? as u64)
            }
            Conn::Pg(link) => {
                let args = pg_args(args);
                link.borrow_mut().run(sql, |c, st| c.execute(st, &args))
            }
        }
    }

    /// Runs a query, mapping each row with `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        args: &[&dyn Param],
        mut f: impl FnMut(Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, args, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Runs a query, giving `f` each row until it returns false (SQLite then stops reading).
    pub fn each(
        &self,
        sql: &str,
        args: &[&dyn Param],
        mut f: impl FnMut(Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Conn::Lite(c) => {
                let args: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| *a as _).collect();
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(&args[..])?;
                while let Some(r) = rows.next()? {
                    if !f(Row::Lite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Conn::Pg(link) => {
                let args = pg_args(args);
                let rows = link.borrow_mut().run(sql, |c, st| c.query(st, &args))?;
                for r in &rows {
                    if !f(Row::Pg(r))? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[&dyn Param],
        f: impl FnMut(Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.query(sql, args, f)?.into_iter().next())
    }

    /// The one value of a query that always returns a row (an aggregate).
    pub fn value<T: Col>(&self, sql: &str, args: &[&dyn Param]) -> Result<T, StoreError> {
        self.query_opt(sql, args, |r| r.get(0))?
            .ok_or_else(|| StoreError::new(Fault::Corrupt, "an aggregate returned no row"))
    }
}

fn pg_args<'a>(args: &[&'a dyn Param]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter().map(|a| *a as _).collect()
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let code = e.code().map(SqlState::code).unwrap_or("");
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let fault = match code {
            // Class 23: an integrity constraint refused the write.
            c if c.starts_with("23") => Fault::Constraint,
            // Class 08 (connection), 57P0x (the server is shutting down or starting).
            c if c.starts_with("08") || c.starts_with("57P") => Fault::Unavailable,
            _ if e.is_closed() || io => Fault::Unavailable,
            "" => Fault::Corrupt,
            _ => Fault::Sql,
        };
        let message = match e.as_db_error() {
            Some(db) => format!("PostgreSQL: {}: {}", db.code().code(), db.message()),
            None => match std::error::Error::source(&e) {
                Some(cause) => format!("PostgreSQL: {e}: {cause}"),
                None => format!("PostgreSQL: {e}"),
            },
        };
        StoreError::new(fault, message)
    }
}

/// Writes a JSON text column.
pub fn json_text(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("store values serialize to JSON")
}
