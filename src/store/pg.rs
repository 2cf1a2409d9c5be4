//! PostgreSQL, the shared store of cluster mode: its connection ([`Link`]), reconnecting with
//! backoff, the change counter and `NOTIFY` its writes leave for other replicas, the listener
//! that hears theirs, and what keeps a replica serving while the database is away: the last
//! key records read ([`snapshot`]) and the ledger spool ([`spool`]), both files in one
//! directory this process locks.
//!
//! Only the control thread uses a [`Pg`]; the listener thread owns its own connection and only
//! calls the change callback. Invariants: the connection is dropped on the first failure that
//! is the connection's (never retried inside a statement), so every call while the database is
//! away fails at once with `Fault::Unavailable`; spooled rows leave the spool only after the
//! transaction that stores them committed, and a batch is stored at most once (its `origin`).

mod lifecycle;
mod listen;
pub mod snapshot;
pub mod spool;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sql::dollars;
use super::{Fault, KeyRecord, StoreError};

/// The channel writes notify and replicas listen on.
pub const CHANNEL: &str = "shardgate_changes";
/// Reconnect attempts back off from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));
/// While the database is away, at most one log line in this long.
const LOG_EVERY: Duration = Duration::from_secs(30);
/// How long control may wait on a connection attempt, and on data the server does not
/// acknowledge (a cut network): the shards' ledger queues (65,536 rows each) cover that long
/// a stall of control at any rate a shard serves, so no row is dropped for it.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const UNACKED_TIMEOUT: Duration = Duration::from_secs(1);

/// What `store.postgres` configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    pub url: String,
    /// The directory of the spool and the key snapshot.
    pub dir: PathBuf,
    /// The spool's bound in bytes.
    pub spool_max: u64,
}

/// One connection and its prepared statements.
#[derive(Default)]
pub struct Link {
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

pub fn down() -> StoreError {
    StoreError::new(Fault::Unavailable, "PostgreSQL is unreachable")
}

impl Link {
    /// Prepares `sql` once, then runs `f` with it; a connection failure drops the client.
    pub fn run<T>(
        &mut self,
        sql: &str,
        f: impl FnOnce(&mut postgres::Client, &postgres::Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, StoreError> {
        let client = self.client.as_mut().ok_or_else(down)?;
        let st = match self.statements.get(sql) {
            Some(st) => Ok(st.clone()),
            None => client.prepare(&dollars(sql)),
        };
        let out = st.and_then(|st| {
            let out = f(client, &st);
            self.statements.entry(sql.to_owned()).or_insert(st);
            out
        });
        out.map_err(|e| self.failed(e))
    }

    /// Runs statements without parameters (DDL, BEGIN, COMMIT).
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let client = self.client.as_mut().ok_or_else(down)?;
        client.batch_execute(sql).map_err(|e| self.failed(e))
    }

    fn failed(&mut self, e: postgres::Error) -> StoreError {
        let e = StoreError::from(e);
        if e.fault == Fault::Unavailable {
            self.client = None;
            self.statements.clear();
        }
        e
    }

    pub fn is_up(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }
}

/// What the control thread calls when another replica changed keys or teams.
pub type OnChange = Arc<std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>>;

/// The PostgreSQL backend's state beside its connection.
pub struct Pg {
    pub link: RefCell<Link>,
    config: postgres::Config,
    /// `host:port/dbname`, for messages (never the password).
    pub shown: String,
    pub spool: spool::Spool,
    /// How far into the spool the batches are stored, and their rows so far.
    replayed_to: u64,
    replayed: u64,
    pub snapshot: RefCell<snapshot::Snapshot>,
    /// Names this process's ledger batches ("<random>:<n>"), so a replayed one is stored once.
    origin: String,
    batches: u64,
    down_since: Option<Instant>,
    next_try: Instant,
    backoff: Duration,
    logged: Option<Instant>,
    pub on_change: OnChange,
    _listener: listen::Listener,
}

impl Pg {
    /// Opens the directory (locked: one process a directory), the spool and the snapshot, and
    /// tries the database once; a database that is away is not an error here (the caller
    /// decides, from [`Pg::is_up`]), a refused URL is.
    pub fn open(opts: &PgOptions) -> Result<Pg, StoreError> {
        let mut config: postgres::Config = opts.url.parse().map_err(|e| {
            StoreError::new(
                Fault::Io,
                format!("store.postgres.url is not a PostgreSQL URL: {e}"),
            )
        })?;
        config.connect_timeout(CONNECT_TIMEOUT);
        config.tcp_user_timeout(UNACKED_TIMEOUT);
        // A peer that vanished without closing (a cut network) is noticed in about 10 s.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(4))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        config.application_name("shardgate");
        let shown = describe(&config);
        let lock = lock_dir(&opts.dir)?;
        let spool = spool::Spool::open(&opts.dir, opts.spool_max, lock)?;
        let snapshot = RefCell::new(snapshot::Snapshot::open(&opts.dir));
        let on_change: OnChange = Arc::default();
        let listener = listen::Listener::start(config.clone(), on_change.clone());
        Ok(Pg {
            link: RefCell::new(Link::default()),
            config,
            shown,
            spool,
            replayed_to: 0,
            replayed: 0,
            snapshot,
            origin: super::secret::new_id("")?,
            batches: 0,
            down_since: None,
            next_try: Instant::now(),
            backoff: BACKOFF.0,
            logged: None,
            on_change,
            _listener: listener,
        })
    }

    pub fn is_up(&self) -> bool {
        self.link.borrow().is_up()
    }

    /// Connects (one attempt); the caller migrates and replays.
    pub fn connect(&mut self) -> Result<(), StoreError> {
        let client = self.config.connect(postgres::NoTls)?;
        *self.link.borrow_mut() = Link {
            client: Some(client),
            statements: HashMap::new(),
        };
        Ok(())
    }

    /// Whether a reconnect attempt is due (backing off from [`BACKOFF`]'s first to its last).
    pub fn due(&mut self) -> bool {
        if self.is_up() || Instant::now() < self.next_try {
            return false;
        }
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
        true
    }

    /// Notes the database away (why: the failure), logging at most every [`LOG_EVERY`].
    pub fn note_down(&mut self, why: &StoreError) {
        let since = *self.down_since.get_or_insert_with(Instant::now);
        if self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.logged = Some(Instant::now());
            ::log::error!(
                "store: PostgreSQL {} unreachable for {} s ({why}); serving {} known keys, \
                 admin writes answer 503, {} ledger rows spooled in {}; retrying every {} s at most",
                self.shown,
                since.elapsed().as_secs(),
                self.snapshot.borrow().keys(),
                self.spool.rows(),
                self.spool.path().display(),
                BACKOFF.1.as_secs()
            );
        }
    }

    /// Notes the database back: backoff reset, one log line.
    pub fn note_up(&mut self) {
        self.backoff = BACKOFF.0;
        self.logged = None;
        if let Some(since) = self.down_since.take() {
            ::log::info!(
                "store: PostgreSQL {} reachable again after {} s; storing {} spooled ledger rows",
                self.shown,
                since.elapsed().as_secs(),
                self.spool.rows()
            );
        }
    }

    /// A new ledger batch's origin.
    pub fn next_origin(&mut self) -> String {
        self.batches += 1;
        format!("{}:{}", self.origin, self.batches)
    }

    /// The last key records read, for a start or a republish while the database is away.
    pub fn known_keys(&self) -> Option<Vec<KeyRecord>> {
        self.snapshot.borrow().records()
    }
}

/// `host:port/dbname` of a config.
fn describe(c: &postgres::Config) -> String {
    use postgres::config::Host;
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let db = c.get_dbname().or(c.get_user()).unwrap_or("");
    format!("{host}:{port}/{db}")
}

/// Creates `dir` and takes its lock file, so two processes never share a spool.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StoreError> {
    let io = |what: &str, e: std::io::Error| {
        StoreError::new(Fault::Io, format!("{what} {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the spool directory", e))?;
    let file = std::fs::File::create(dir.join("lock"))
        .map_err(|e| io("cannot create the lock file in", e))?;
    if !crate::sys::try_lock(&file) {
        return Err(StoreError::new(
            Fault::Io,
            format!(
                "the spool directory {} is in use by another shardgate process: give each \
                 replica its own store.postgres.spool",
                dir.display()
            ),
        ));
    }
    Ok(file)
}
