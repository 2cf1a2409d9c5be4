//! The PostgreSQL store's life: opening it (the database may be away), reconnecting, and
//! storing the spool once it is back. `impl Store` here, beside the state it drives ([`Pg`]).

use super::{Pg, PgOptions, down};

/// Spooled batches stored per control tick (at most 2,048 rows each).
const REPLAY_BATCHES: usize = 16;
use crate::store::{Db, Fault, Health, Store, StoreError, ledger, schema};

impl Store {
    /// PostgreSQL at `opts.url`, migrated like a SQLite file. A database that is away is not
    /// an error: the store starts from its key snapshot and connects when it can
    /// ([`Store::heartbeat`]); a newer schema, a bad URL or a spool directory in use is.
    pub fn open_pg(opts: &PgOptions) -> Result<Store, StoreError> {
        let pg = Pg::open(opts)?;
        let mut store = Store {
            db: Db::Pg(Box::new(pg)),
            version: 0,
        };
        match store.reconnect() {
            Err(e) if e.fault == Fault::TooNew => return Err(e),
            Err(e) => store.starting_without(&e),
            Ok(()) => {}
        }
        Ok(store)
    }

    /// Says what a start without the database has and lacks.
    fn starting_without(&mut self, why: &StoreError) {
        let Db::Pg(pg) = &mut self.db else { return };
        let snapshot = pg.snapshot.borrow();
        let has = match snapshot.saved_ms() {
            Some(ms) => format!(
                "serving the {} keys last read from it (saved {})",
                snapshot.keys(),
                crate::observe::time::iso8601(ms)
            ),
            None => "no key snapshot in the spool directory: only the config's keys work".into(),
        };
        drop(snapshot);
        ::log::error!(
            "store: starting while PostgreSQL {} is unreachable ({why}): {has}; missing until \
             it returns: admin API writes and reports, restored limit counters, spend totals",
            pg.shown
        );
        pg.note_down(why);
    }

    /// One connection attempt: connect, migrate, store what the spool holds.
    fn reconnect(&mut self) -> Result<(), StoreError> {
        let Db::Pg(pg) = &mut self.db else {
            return Ok(());
        };
        pg.connect()?;
        let label = format!("PostgreSQL {}", pg.shown);
        let migrated = schema::migrate_pg(&pg.link, &label);
        let version = match migrated {
            Ok(v) => v,
            Err(e) => {
                // Never serve a schema this build does not know.
                *pg.link.borrow_mut() = super::Link::default();
                return Err(e);
            }
        };
        self.version = version;
        pg.note_up();
        self.replay_spool().map(|_| ())
    }

    /// Called every control tick: reconnects a lost PostgreSQL (with backoff), stores the
    /// spool once it can; says whether the store is up.
    pub fn heartbeat(&mut self) -> Health {
        let Db::Pg(pg) = &mut self.db else {
            return Health {
                up: true,
                spooled: 0,
            };
        };
        if !pg.is_up() && pg.due() {
            match self.reconnect() {
                Ok(()) => {}
                Err(e) => {
                    if let Db::Pg(pg) = &mut self.db {
                        pg.note_down(&e);
                    }
                }
            }
        } else if pg.is_up() && pg.spool.rows() > 0 {
            let _ = self.replay_spool();
        } else if !pg.is_up() {
            pg.note_down(&down());
        }
        let Db::Pg(pg) = &self.db else { unreachable!() };
        Health {
            up: pg.is_up(),
            spooled: pg.spool.rows(),
        }
    }

    /// Stores up to [`REPLAY_BATCHES`] spooled batches (each once: its origin) from where the
    /// last call stopped; empties the spool once every batch in it is stored. A few batches a
    /// call keep each of control's ticks short however long the outage was.
    fn replay_spool(&mut self) -> Result<u64, StoreError> {
        let Db::Pg(pg) = &mut self.db else {
            return Ok(0);
        };
        if pg.spool.rows() == 0 {
            return Ok(0);
        }
        let (batches, next) = pg.spool.read_from(pg.replayed_to, REPLAY_BATCHES)?;
        let mut stored = 0;
        for b in &batches {
            let rows = match ledger::unpack(&b.packed) {
                Ok(rows) => rows,
                Err(e) => {
                    ::log::error!(
                        "ledger spool: batch {} is unreadable, dropped: {e}",
                        b.origin
                    );
                    continue;
                }
            };
            self.transact(false, |w| w.append_spooled(&rows, &b.origin))?;
            stored += u64::from(b.rows);
        }
        let Db::Pg(pg) = &mut self.db else {
            unreachable!()
        };
        pg.replayed_to = next;
        pg.replayed += stored;
        if next >= pg.spool.bytes() {
            pg.spool.clear()?;
            pg.replayed_to = 0;
            ::log::info!(
                "ledger spool: {} rows stored in PostgreSQL, the spool is empty",
                std::mem::take(&mut pg.replayed)
            );
        }
        Ok(stored)
    }

    /// What control calls when another replica's change is heard (PostgreSQL only).
    pub fn on_change(&self, f: impl Fn() + Send + Sync + 'static) {
        if let Db::Pg(pg) = &self.db {
            let _ = pg.on_change.set(Box::new(f));
        }
    }
}
