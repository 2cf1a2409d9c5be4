//! The control thread: config load and reload, the store, key publishing, signals.
//!
//! It owns everything that is not per request. Shards never wait on it: it prepares a new
//! generation off the shards and installs it in two phases (prepare on every shard, then
//! commit), and it publishes the key table, rebuilt after every store change, on each shard's
//! queue. The admin thread reaches it through [`Handle`]: commands in, replies on one-shot
//! channels.

mod budget;
mod cluster;
mod keys;
pub mod ledger;
mod reload;
mod slots;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::auth::KeyTable;
use crate::config::{Problems, Snapshot, StoreConfig};
use crate::observe::metrics::ShardMetrics;
use crate::runtime::{self, ShardMsg};
use crate::store::Store;

pub use reload::Reloaded;

/// A request to the control thread.
pub enum Command {
    /// Re-read the config file; the reply (none for SIGHUP) says what changed or every problem.
    Reload(Option<flume::Sender<Result<Reloaded, Problems>>>),
    /// A key or team call of the admin API.
    Api {
        method: String,
        path: String,
        query: String,
        body: Vec<u8>,
        reply: flume::Sender<crate::admin::api::Reply>,
    },
    /// The process is stopping: save what is unsaved (last-used times), then end.
    Stop(flume::Sender<()>),
    /// Another replica changed keys or teams (PostgreSQL's `NOTIFY`, heard by the store).
    StoreChanged,
}

/// What the admin thread holds: the way to control and to the shards.
pub struct Handle {
    commands: flume::Sender<Command>,
    shards: Vec<flume::Sender<ShardMsg>>,
    /// The committed config (the admin listener's limits, the master key, metric names).
    current: Mutex<Arc<Snapshot>>,
    pub ready: Arc<std::sync::atomic::AtomicUsize>,
    pub draining: AtomicBool,
    /// The shards' ledger outboxes (for their drop counts), and rows written so far.
    pub ledger: Vec<Arc<ledger::Outbox>>,
    pub ledger_written: std::sync::atomic::AtomicU64,
    /// Soft budgets reported crossed.
    pub soft_alerts: std::sync::atomic::AtomicU64,
    /// Cluster mode: 1 while Redis answers, 0 while it does not; -1 on a single node.
    pub cluster_pool_up: Arc<std::sync::atomic::AtomicI64>,
    /// Cluster mode: the replicas alive in Redis (-1 until counted, or on a single node).
    pub cluster_replicas_alive: Arc<std::sync::atomic::AtomicI64>,
    /// Whether the store takes writes, and ledger rows spooled meanwhile (PostgreSQL).
    pub store_up: AtomicBool,
    pub spooled: std::sync::atomic::AtomicU64,
}

impl Handle {
    pub fn config(&self) -> Arc<Snapshot> {
        self.current.lock().expect("config lock").clone()
    }

    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Sends a command; false when the control thread is gone (shutting down).
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Removes the cached answers `p` names from every shard; returns how many.
    pub async fn purge_cache(&self, p: &crate::cache::Purge) -> u64 {
        let mut purged = 0;
        for s in &self.shards {
            let (tx, rx) = flume::bounded(1);
            if s.send(ShardMsg::PurgeCache(p.clone(), tx)).is_err() {
                continue;
            }
            let reply = monoio::time::timeout(Duration::from_secs(5), rx.recv_async()).await;
            if let Ok(Ok(n)) = reply {
                purged += n;
            }
        }
        purged
    }

    /// Asks every shard for its metrics and merges them.
    pub async fn metrics(&self) -> ShardMetrics {
        let mut merged = ShardMetrics::new();
        for s in &self.shards {
            let (tx, rx) = flume::bounded(1);
            if s.try_send(ShardMsg::Metrics(tx)).is_err() {
                continue;
            }
            let reply = monoio::time::timeout(Duration::from_secs(2), rx.recv_async()).await;
            if let Ok(Ok(m)) = reply {
                merged.merge(&m);
            }
        }
        merged
    }
}

/// How the process was started: the config file (none: the embedded default) and overrides.
pub struct Start {
    pub config: Option<PathBuf>,
    pub shards: Option<usize>,
}

/// Runs the gateway until SIGTERM/SIGINT, then drains. SIGHUP reloads the config.
pub fn serve(start: Start) -> anyhow::Result<()> {
    let snapshot = reload::load(&start).map_err(|p| anyhow::anyhow!("{p}"))?;
    let mut store = match &snapshot.store {
        StoreConfig::Memory => Store::open(None),
        StoreConfig::File(p) => Store::open(Some(p)),
        StoreConfig::Postgres(p) => Store::open_pg(&crate::store::pg::PgOptions {
            url: p.url.expose().to_owned(),
            dir: p.spool.clone(),
            spool_max: p.spool_max_mb.saturating_mul(1 << 20),
        }),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (commands, inbox) = flume::bounded(256);
    // One wake-up queued at a time, however many changes are heard meanwhile.
    let (heard, changes) = (commands.clone(), Arc::new(AtomicBool::new(false)));
    let pending = changes.clone();
    store.on_change(move || {
        if !pending.swap(true, Ordering::AcqRel) && heard.try_send(Command::StoreChanged).is_err() {
            pending.store(false, Ordering::Release);
        }
    });
    let health = store.heartbeat();
    ::log::info!("store: {}", store.describe());
    let tls: runtime::generation::Tls = crate::upstream::tls::configs(&snapshot)
        .map_err(anyhow::Error::msg)?
        .into();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .context("installing signal handlers")?;
    let mut slots = slots::Slots::default();
    slots.budget_offset_min = snapshot.server.budget_offset_min;
    let mut snapshot = snapshot;
    snapshot.alias_limits = alias_limits(&snapshot, &mut slots);
    let snapshot = Arc::new(snapshot);
    let mut numbers = keys::KeyNumbers::default();
    let keys = keys::table(&snapshot, &store, None, &mut slots, &mut numbers)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let replica = crate::limits::Replica::default();
    let cluster_pool_up = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let cluster_replicas_alive = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let cluster = snapshot.cluster.clone().map(|c| {
        let (up, alive) = (cluster_pool_up.clone(), cluster_replicas_alive.clone());
        cluster::Cluster::new(c, up, alive, replica.short.clone())
    });
    let pool: Arc<dyn crate::limits::Pool> = match cluster {
        Some(_) => Arc::new(replica),
        None => Arc::new(crate::limits::InProcess),
    };
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    let n = runtime::shard_count(&snapshot, cores);
    let outboxes: Vec<Arc<ledger::Outbox>> = match snapshot.ledger_on() {
        true => (0..n).map(|_| ledger::Outbox::new()).collect(),
        false => Vec::new(),
    };
    ::log::info!(
        "spend ledger: {}",
        if outboxes.is_empty() {
            "off (server.ledger: on to write it; the store is in memory)".to_owned()
        } else {
            format!(
                "on, {} rows queued per shard at most, raw rows kept {} days",
                ledger::QUEUE_ROWS,
                snapshot.server.ledger_retention_days
            )
        }
    );
    if keys.is_open() {
        ::log::warn!(
            "NO KEYS CONFIGURED: the gateway accepts every request without authentication"
        );
    }
    let admin = snapshot
        .server
        .admin_listen
        .map(runtime::listener::bind_one)
        .transpose()?;
    let users = Arc::new(crate::limits::Users::new(
        slots.ids(),
        snapshot.end_user_limits.clone(),
        snapshot.server.budget_offset_min,
    ));
    ledger::restore_usage(&store, &slots, &users, crate::auth::now_ms());
    let shards = runtime::start(
        snapshot.clone(),
        tls,
        keys.clone(),
        pool,
        &outboxes,
        users.clone(),
    )?;
    let handle = Arc::new(Handle {
        commands,
        shards: shards.senders.clone(),
        current: Mutex::new(snapshot.clone()),
        ready: shards.ready.clone(),
        draining: AtomicBool::new(false),
        ledger: outboxes.clone(),
        ledger_written: std::sync::atomic::AtomicU64::new(0),
        soft_alerts: std::sync::atomic::AtomicU64::new(0),
        cluster_pool_up,
        cluster_replicas_alive,
        store_up: AtomicBool::new(health.up),
        spooled: std::sync::atomic::AtomicU64::new(health.spooled),
    });
    let admin_addr = match admin {
        Some(l) => Some(crate::admin::start(l, handle.clone())?),
        None => None,
    };
    let mut control = Control {
        start,
        current: snapshot,
        generation: 1,
        store,
        keys,
        shards: shards.senders.clone(),
        handle: handle.clone(),
        data_version: 0,
        last_used: Default::default(),
        keys_behind: Vec::new(),
        slots,
        outboxes,
        batch: Vec::new(),
        numbers,
        saved_usage: Default::default(),
        soft_alerted: Default::default(),
        users,
        cluster,
        changes,
    };
    control.data_version = control.store.data_version().unwrap_or(0);
    // The first shares are reserved (or fallen back to) before the gateway says it is ready.
    control.cluster_tick();
    let thread = std::thread::Builder::new()
        .name("control".into())
        .spawn(move || control.run(inbox))?;
    let admin_shown = admin_addr.map_or("off".to_owned(), |a| a.to_string());
    ::log::info!(
        "shardgate {} ready: api={} admin={admin_shown} shards={}",
        env!("CARGO_PKG_VERSION"),
        shards.api_addr,
        shards.count()
    );
    for sig in signals.forever() {
        if sig == signal_hook::consts::SIGHUP {
            ::log::info!("SIGHUP: reloading the config");
            handle.send(Command::Reload(None));
            continue;
        }
        let drain = handle.config().server.drain_timeout;
        ::log::info!("signal {sig}: draining (up to {} ms)", drain.as_millis());
        break;
    }
    handle.draining.store(true, Ordering::SeqCst);
    // Every admin write committed before its reply; only last-used times may be unsaved.
    let (stopped, done) = flume::bounded(1);
    // A control thread still busy after 5 s is left behind rather than holding up the drain.
    if handle.send(Command::Stop(stopped)) && done.recv_timeout(Duration::from_secs(5)).is_ok() {
        let _ = thread.join();
    }
    shards.drain();
    ::log::info!("stopped");
    Ok(())
}

/// How often control drains the ledger outboxes and looks for outside store changes.
const TICK: Duration = Duration::from_millis(200);
/// The pause between ledger batches while rows wait (the shards get the CPU in between).
const CATCH_UP: Duration = Duration::from_millis(2);
/// How often limit counters are saved, and old ledger rows pruned.
const SAVE_EVERY: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often last-used times are written to the store.
const LAST_USED_EVERY: Duration = Duration::from_secs(5);

/// The control thread's state.
struct Control {
    start: Start,
    current: Arc<Snapshot>,
    generation: u64,
    store: Store,
    keys: Arc<KeyTable>,
    shards: Vec<flume::Sender<ShardMsg>>,
    handle: Arc<Handle>,
    /// The store's `data_version` when control last read it (another writer bumps it).
    data_version: i64,
    /// Last-used seconds already written, by key id.
    last_used: std::collections::HashMap<String, u64>,
    /// Shards whose queue did not take the latest key table (sent again every tick).
    keys_behind: Vec<usize>,
    /// Every limit slot, by name (see [`slots`]).
    slots: slots::Slots,
    outboxes: Vec<Arc<ledger::Outbox>>,
    batch: Vec<ledger::Spend>,
    /// The numbers ledger rows name keys by.
    numbers: keys::KeyNumbers,
    /// Limit counts last saved, by slot id (only moved ones are written again).
    saved_usage: std::collections::HashMap<u32, (i64, u64)>,
    /// Soft budgets already reported, with the window they were reported in.
    soft_alerted: std::collections::HashMap<String, u32>,
    /// The end users' limits, shared with the shards.
    users: Arc<crate::limits::Users>,
    /// Cluster mode: this replica's shares of the pools in Redis.
    cluster: Option<cluster::Cluster>,
    /// A [`Command::StoreChanged`] is queued (the store's listener queues at most one).
    changes: Arc<AtomicBool>,
}

/// The slots of every alias's own `limits:`, by model index.
fn alias_limits(snap: &Snapshot, slots: &mut slots::Slots) -> Vec<Vec<crate::limits::Limit>> {
    snap.models
        .iter()
        .map(|m| slots.of_alias(&m.alias, &m.limits))
        .collect()
}

impl Control {
    fn run(&mut self, inbox: flume::Receiver<Command>) {
        let mut flushed = Instant::now();
        let mut saved = Instant::now();
        let mut pruned: Option<Instant> = None;
        let mut ticked = Instant::now();
        let mut behind = false;
        loop {
            // A ledger behind is drained a batch at a time with short pauses between.
            let wait = match (behind, &self.cluster) {
                (true, _) => CATCH_UP,
                (false, Some(_)) => cluster::WAKE,
                (false, None) => TICK,
            };
            match inbox.recv_timeout(wait) {
                Ok(Command::Reload(reply)) => {
                    let result = self.reload();
                    match (&result, reply) {
                        (_, Some(tx)) => {
                            let _ = tx.send(result);
                        }
                        (Ok(r), None) => ::log::info!("reload: {r}"),
                        (Err(p), None) => {
                            ::log::error!("reload refused; the current config keeps serving:\n{p}")
                        }
                    }
                }
                Ok(Command::Api {
                    method,
                    path,
                    query,
                    body,
                    reply,
                }) => {
                    self.flush_last_used();
                    let r = self.api(&method, &path, &query, &body);
                    let _ = reply.send(r);
                }
                Ok(Command::StoreChanged) => {
                    self.changes.store(false, Ordering::Release);
                    self.notice_outside_changes();
                }
                Ok(Command::Stop(done)) => {
                    // Everything queued, unless the store keeps refusing it.
                    for _ in 0..1_000 {
                        if !self.drain_ledger() {
                            break;
                        }
                    }
                    self.save_usage();
                    self.flush_last_used();
                    let _ = done.send(());
                    return;
                }
                Err(flume::RecvTimeoutError::Timeout) => {}
                Err(flume::RecvTimeoutError::Disconnected) => {
                    self.flush_last_used();
                    return;
                }
            }
            behind = self.drain_ledger();
            self.cluster_tick();
            if ticked.elapsed() < TICK {
                continue;
            }
            ticked = Instant::now();
            let health = self.store.heartbeat();
            self.handle.store_up.store(health.up, Ordering::Relaxed);
            self.handle.spooled.store(health.spooled, Ordering::Relaxed);
            self.watch_soft_budgets();
            self.notice_outside_changes();
            self.catch_up_keys();
            if saved.elapsed() >= SAVE_EVERY {
                self.save_usage();
                saved = Instant::now();
            }
            if !self.outboxes.is_empty() && pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                let keep = self.current.server.ledger_retention_days;
                match self.store.prune_ledger(keep, crate::auth::now_ms()) {
                    Ok(0) => {}
                    Ok(n) => ::log::info!("ledger: {n} rows older than {keep} days deleted"),
                    Err(e) => ::log::warn!("ledger: pruning failed: {e}"),
                }
                pruned = Some(Instant::now());
            }
            if flushed.elapsed() >= LAST_USED_EVERY {
                self.flush_last_used();
                flushed = Instant::now();
            }
        }
    }

    /// One admin API call; a committed write republishes the key table at once, before the
    /// reply, so the caller's next request already sees it on every shard that has read its
    /// queue (well under a millisecond on a live shard).
    fn api(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> crate::admin::api::Reply {
        let config_keys: Vec<crate::admin::api::ConfigKey> = self
            .current
            .keys
            .iter()
            .map(|k| crate::admin::api::ConfigKey {
                name: k.name.clone(),
                models: k.models.clone().unwrap_or_default(),
            })
            .collect();
        let aliases: Vec<String> = self
            .current
            .models
            .iter()
            .map(|m| m.alias.clone())
            .collect();
        let cx = crate::admin::api::Context {
            now_ms: crate::auth::now_ms(),
            config_keys: &config_keys,
            aliases: &aliases,
        };
        let mut reply =
            crate::admin::api::dispatch(&mut self.store, &cx, method, path, query, body);
        if reply.changed {
            self.publish_keys("admin API");
        }
        if reply.status == 200 && matches!(path, "/key/info" | "/team/info") {
            self.add_limit_state(&mut reply);
        }
        reply
    }

    /// Rebuilds the key table from config and store and sends it to every shard.
    fn publish_keys(&mut self, why: &str) {
        match keys::table(
            &self.current,
            &self.store,
            Some(&self.keys),
            &mut self.slots,
            &mut self.numbers,
        ) {
            Ok(table) => {
                self.keys = table;
                // New keys' first requests find their shares already reserved.
                self.cluster_reserve();
                self.data_version = self.store.data_version().unwrap_or(self.data_version);
                self.keys_behind.clear();
                for (i, s) in self.shards.iter().enumerate() {
                    if s.send_timeout(ShardMsg::Keys(self.keys.clone()), Duration::from_secs(1))
                        .is_err()
                    {
                        ::log::error!("shard {i}: its queue did not take the key table; retrying");
                        self.keys_behind.push(i);
                    }
                }
                ::log::debug!("keys republished ({why}): {}", self.keys.len());
            }
            Err(e) => ::log::error!("keys not republished ({why}): {e}"),
        }
    }

    /// Sends a message to every shard; a shard whose queue stays full for a second is
    /// reported (it is stuck), never skipped silently.
    fn broadcast(&self, msg: impl Fn() -> ShardMsg) -> usize {
        let mut delivered = 0;
        for (i, s) in self.shards.iter().enumerate() {
            match s.send_timeout(msg(), Duration::from_secs(1)) {
                Ok(()) => delivered += 1,
                Err(_) => ::log::error!("shard {i}: its queue did not take a control message"),
            }
        }
        delivered
    }

    /// Shards that missed the latest key table get it again (a revocation must reach them).
    fn catch_up_keys(&mut self) {
        let keys = &self.keys;
        let shards = &self.shards;
        self.keys_behind
            .retain(|&i| shards[i].try_send(ShardMsg::Keys(keys.clone())).is_err());
    }

    /// Another process (or a manual edit) changed the store: republish.
    fn notice_outside_changes(&mut self) {
        if let Ok(v) = self.store.data_version()
            && v != self.data_version
        {
            self.data_version = v;
            self.publish_keys("store changed");
        }
    }

    /// Appends a batch of ledger rows; true when more wait.
    fn drain_ledger(&mut self) -> bool {
        if self.outboxes.is_empty() {
            return false;
        }
        let names = ledger::Names {
            labels: &self.current.labels.names,
            keys: &self.numbers,
        };
        let d = ledger::drain(&mut self.store, &self.outboxes, &mut self.batch, &names);
        self.handle
            .ledger_written
            .fetch_add(d.written, Ordering::Relaxed);
        d.behind
    }

    fn save_usage(&mut self) {
        let now = crate::auth::now_ms();
        ledger::save_usage(
            &mut self.store,
            &self.slots,
            &self.users,
            &mut self.saved_usage,
            now,
        );
    }

    /// Writes last-used times that moved since the last flush.
    fn flush_last_used(&mut self) {
        let mut moved = Vec::new();
        for e in self.keys.entries() {
            let s = e.last_used_s();
            if s > 0 && !e.id.starts_with("config:") && self.last_used.get(&*e.id) != Some(&s) {
                moved.push((e.id.to_string(), s as i64 * 1000));
            }
        }
        if moved.is_empty() {
            return;
        }
        match self.store.touch_last_used(&moved) {
            Ok(()) => {
                for (id, ms) in moved {
                    self.last_used.insert(id, (ms / 1000) as u64);
                }
                // Our own write bumps no data_version for this connection, but be sure.
                self.data_version = self.store.data_version().unwrap_or(self.data_version);
            }
            // An unreachable store says so itself, at most every 30 s.
            Err(e) if e.fault == crate::store::Fault::Unavailable => {}
            Err(e) => ::log::warn!("last-used times not saved: {e}"),
        }
    }
}
