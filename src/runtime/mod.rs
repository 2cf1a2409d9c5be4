//! Shard bootstrap: pinned threads, each with its own monoio runtime, listener and the
//! access-log queue, and each shard's message loop. Everything else (config, reload, the
//! store, signals) belongs to [`crate::control`].
//!
//! Control talks to a shard only through its bounded queue of [`ShardMsg`]s, which the shard
//! handles exhaustively until it has drained.

pub mod generation;
mod health;
pub(crate) mod listener;
pub mod shard;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use monoio::net::TcpListener;

use crate::auth::KeyTable;
use crate::config::Snapshot;
use crate::observe::log;
use crate::observe::metrics::ShardMetrics;
use generation::Tls;
use shard::Shard;

/// Everything control can tell a shard; handled exhaustively by [`message_loop`].
pub enum ShardMsg {
    /// Phase one of an install: build the next generation, hold it, acknowledge.
    Prepare {
        id: u64,
        config: Arc<Snapshot>,
        tls: Tls,
        ack: flume::Sender<usize>,
    },
    /// Phase two: serve the prepared generation `id` to requests that start from now on.
    Commit(u64),
    /// Drop the prepared generation `id` (another shard did not prepare in time).
    Abort(u64),
    /// The key table new requests authenticate against.
    Keys(Arc<KeyTable>),
    /// A copy of the shard's metrics.
    Metrics(flume::Sender<ShardMetrics>),
    /// Remove cached answers; reply with how many.
    PurgeCache(crate::cache::Purge, flume::Sender<u64>),
    /// Stop accepting, finish in-flight requests (up to the drain timeout), end.
    Drain,
}

/// The running shards, as [`start`] returns them.
pub struct Shards {
    pub senders: Vec<flume::Sender<ShardMsg>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    writer: log::Writer,
    /// Shards that have started serving.
    pub ready: Arc<AtomicUsize>,
    pub api_addr: std::net::SocketAddr,
}

impl Shards {
    pub fn count(&self) -> usize {
        self.senders.len()
    }

    /// Tells every shard to drain and waits until all have stopped and the log is flushed.
    pub fn drain(self) {
        for s in &self.senders {
            let _ = s.send(ShardMsg::Drain);
        }
        for t in self.threads {
            let _ = t.join();
        }
        self.writer.finish();
    }
}

pub fn shard_count(snapshot: &Snapshot, cores: usize) -> usize {
    use crate::config::Shards;
    match (snapshot.server.shards, &snapshot.server.cpus) {
        (Shards::Count(n), _) => n,
        (Shards::Auto, Some(cpus)) => cpus.len(),
        (Shards::Auto, None) => cores.max(1),
    }
}

type ShardRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;

/// Builds a shard's runtime: io_uring (with SQPOLL when configured and permitted), or epoll
/// where io_uring is unavailable. Says once per shard which one it got.
fn runtime(id: usize, server: &crate::config::Server) -> std::io::Result<ShardRuntime> {
    let build = |sqpoll: Option<u32>, coop: bool| {
        let mut urb = io_uring::IoUring::builder();
        if let Some(idle) = sqpoll {
            urb.setup_sqpoll(idle);
        }
        // Completions that arrive while the shard runs wait for its next io_uring_enter (it
        // makes one every loop turn) instead of interrupting it with an IPI each: under load
        // those interrupts cost more than the socket work they delivered. Linux 5.19+.
        if coop {
            urb.setup_coop_taskrun();
        }
        monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .with_entries(server.io_uring_entries)
            .uring_builder(urb)
            .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))
            .build()
    };
    if !monoio::utils::detect_uring() {
        ::log::warn!(
            "shard {id}: io_uring unavailable (kernel, seccomp or MONOIO_FORCE_LEGACY_DRIVER); using epoll"
        );
        return build(None, false);
    }
    if let Some(idle) = server.sqpoll_idle_ms {
        match build(Some(idle), false) {
            Ok(rt) => {
                ::log::info!(
                    "shard {id}: io_uring driver, {} entries, SQPOLL idle {idle} ms",
                    server.io_uring_entries
                );
                return Ok(rt);
            }
            Err(e) => ::log::warn!("shard {id}: SQPOLL refused ({e}); io_uring without it"),
        }
    }
    let rt = build(None, true).or_else(|e| {
        ::log::info!("shard {id}: io_uring without cooperative task running ({e})");
        build(None, false)
    });
    ::log::info!(
        "shard {id}: io_uring driver, {} entries",
        server.io_uring_entries
    );
    rt
}

/// Starts the shards on `snapshot` with `keys`; returns once every one is serving.
pub fn start(
    snapshot: Arc<Snapshot>,
    tls: Tls,
    keys: Arc<KeyTable>,
    pool: Arc<dyn crate::limits::Pool>,
    ledger: &[Arc<crate::control::ledger::Outbox>],
    users: Arc<crate::limits::Users>,
) -> anyhow::Result<Shards> {
    let server = snapshot.server.clone();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let n = shard_count(&snapshot, cores.len());
    let listeners = listener::bind(server.listen, n)?;
    let api_addr = listeners[0].local_addr()?;
    let (writer, sinks) = log::start(&server.access_log, n).context("opening the access log")?;
    let ready = Arc::new(AtomicUsize::new(0));
    let id_prefix = std::process::id()
        ^ (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos());
    let mut senders = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for (id, (std_listener, sink)) in listeners.into_iter().zip(sinks).enumerate() {
        let (tx, rx) = flume::bounded::<ShardMsg>(64);
        senders.push(tx);
        let core = match (&server.cpus, server.pin) {
            (_, false) => None,
            (Some(cpus), true) => Some(core_affinity::CoreId {
                id: cpus[id % cpus.len()],
            }),
            (None, true) => (!cores.is_empty()).then(|| cores[id % cores.len()]),
        };
        let (snapshot, tls, keys, ready) =
            (snapshot.clone(), tls.clone(), keys.clone(), ready.clone());
        let shared = shard::Shared {
            pool: pool.clone(),
            ledger: ledger.get(id).cloned(),
            users: users.clone(),
        };
        let t = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                if let Some(core) = core
                    && !core_affinity::set_for_current(core)
                {
                    ::log::warn!("shard {id}: could not pin to core {}", core.id);
                }
                let mut rt = match runtime(id, &snapshot.server) {
                    Ok(rt) => rt,
                    Err(e) => {
                        ::log::error!("shard {id}: cannot build its runtime: {e}");
                        std::process::exit(1);
                    }
                };
                rt.block_on(async move {
                    let generation = generation::Generation::first(snapshot, &tls);
                    let shard = Rc::new(Shard::new(
                        (id, n),
                        generation,
                        keys,
                        sink,
                        id_prefix,
                        shared,
                    ));
                    let listener =
                        TcpListener::from_std(std_listener).expect("adopting the listener");
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
                    monoio::spawn(shard::accept_loop(shard.clone(), listener));
                    monoio::spawn(shard::trim_when_idle(shard.clone()));
                    health::restart(&shard);
                    ready.fetch_add(1, Ordering::SeqCst);
                    message_loop(&shard, &rx, fd).await;
                });
            })?;
        threads.push(t);
    }
    while ready.load(Ordering::SeqCst) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(Shards {
        senders,
        threads,
        writer,
        ready,
        api_addr,
    })
}

/// A shard's message loop. Until `Drain` it handles every message as it comes; then it stops
/// accepting and keeps handling messages while in-flight requests finish (up to the drain
/// timeout), so control never waits on a shard that stopped listening.
async fn message_loop(
    shard: &Rc<Shard>,
    rx: &flume::Receiver<ShardMsg>,
    listen_fd: std::os::fd::RawFd,
) {
    while let Ok(msg) = rx.recv_async().await {
        if !handle(shard, msg) {
            break;
        }
    }
    shard.drain();
    crate::sys::shutdown_listener(listen_fd);
    ::log::debug!(
        "shard {}: draining with {} in flight",
        shard.id,
        shard.inflight()
    );
    let drain = shard.generation().config.server.drain_timeout;
    let deadline = std::time::Instant::now() + drain;
    while shard.inflight() > 0 && std::time::Instant::now() < deadline {
        monoio::select! {
            msg = rx.recv_async() => if let Ok(msg) = msg { handle(shard, msg); },
            _ = monoio::time::sleep(Duration::from_millis(5)) => {}
        }
    }
    if shard.inflight() > 0 {
        ::log::warn!(
            "shard {}: drain timeout with {} requests in flight",
            shard.id,
            shard.inflight()
        );
    }
}

/// Handles one message; false for `Drain`.
fn handle(shard: &Rc<Shard>, msg: ShardMsg) -> bool {
    match msg {
        ShardMsg::Prepare {
            id,
            config,
            tls,
            ack,
        } => {
            shard.prepare(id, config, &tls);
            let _ = ack.try_send(shard.id);
        }
        ShardMsg::Commit(id) => {
            if !shard.commit(id) {
                ::log::warn!(
                    "shard {}: commit of generation {id} without its prepare",
                    shard.id
                );
            }
        }
        ShardMsg::Abort(id) => shard.abort(id),
        ShardMsg::Keys(keys) => shard.set_keys(keys),
        ShardMsg::Metrics(tx) => {
            let mut m = shard.metrics.borrow().clone();
            m.limit_overshoot = shard.leases.borrow().overshoot;
            m.cache_store = shard.cache.stats();
            let _ = tx.try_send(m);
        }
        ShardMsg::PurgeCache(p, tx) => {
            let _ = tx.try_send(shard.cache.purge(&p));
        }
        ShardMsg::Drain => return false,
    }
    true
}
