//! Process bootstrap: shards (pinned threads, each with its own monoio runtime and listener),
//! the admin thread, the access-log writer, and the control loop on the main thread that owns
//! signals and shutdown.
//!
//! Shards and the control side talk only through per-shard bounded channels: the control side
//! sends `Drain` and metrics requests; shards answer with copies of their metrics.

mod health;
mod listener;
pub mod shard;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use monoio::net::TcpListener;

use crate::config::{Shards, Snapshot};
use crate::observe::log;
use crate::observe::metrics::ShardMetrics;
use shard::Shard;

pub enum ShardMsg {
    Metrics(flume::Sender<ShardMetrics>),
    Drain,
}

/// What the admin side needs to reach the shards.
pub struct Control {
    pub snapshot: Arc<Snapshot>,
    pub shards: Vec<flume::Sender<ShardMsg>>,
    pub ready: Arc<AtomicUsize>,
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

impl Control {
    /// Asks every shard for its metrics and merges them.
    pub async fn metrics(&self) -> ShardMetrics {
        let mut merged = ShardMetrics::new(&self.snapshot);
        for s in &self.shards {
            let (tx, rx) = flume::bounded(1);
            if s.send(ShardMsg::Metrics(tx)).is_err() {
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

fn shard_count(snapshot: &Snapshot, cores: usize) -> usize {
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

/// Runs the gateway until SIGTERM/SIGINT, then drains. Returns when every shard has stopped.
pub fn serve(snapshot: Snapshot) -> anyhow::Result<()> {
    let snapshot = Arc::new(snapshot);
    let server = snapshot.server.clone();
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let n = shard_count(&snapshot, cores.len());
    let tls = crate::upstream::tls::configs(&snapshot).map_err(anyhow::Error::msg)?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .context("installing signal handlers")?;
    let listeners = listener::bind(server.listen, n)?;
    let api_addr = listeners[0].local_addr()?;
    let admin = server.admin_listen.map(listener::bind_one).transpose()?;
    let (writer, sinks) = log::start(&server.access_log, n).context("opening the access log")?;
    if snapshot.keys.is_empty() {
        ::log::warn!(
            "NO KEYS CONFIGURED: the gateway accepts every request without authentication"
        );
    }

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
        let snapshot = snapshot.clone();
        let tls = tls.clone();
        let ready = ready.clone();
        let drain = server.drain_timeout;
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
                    let client = crate::upstream::Client::new(&snapshot, &tls);
                    let shard = Rc::new(Shard::new(id, snapshot, client, sink, id_prefix));
                    let listener =
                        TcpListener::from_std(std_listener).expect("adopting the listener");
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
                    monoio::spawn(shard::accept_loop(shard.clone(), listener));
                    monoio::spawn(shard::trim_when_idle(shard.clone()));
                    health::start(&shard, n);
                    ready.fetch_add(1, Ordering::SeqCst);
                    control_loop(&shard, &rx, fd, drain).await;
                });
            })?;
        threads.push(t);
    }
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let control = Arc::new(Control {
        snapshot: snapshot.clone(),
        shards: senders.clone(),
        ready: ready.clone(),
        draining: draining.clone(),
    });
    let admin_addr = match admin {
        Some(l) => Some(crate::admin::start(l, control.clone(), n)?),
        None => None,
    };
    while ready.load(Ordering::SeqCst) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let admin_shown = admin_addr.map_or("off".to_owned(), |a| a.to_string());
    ::log::info!(
        "shardgate {} ready: api={api_addr} admin={admin_shown} shards={n}",
        env!("CARGO_PKG_VERSION")
    );

    if let Some(sig) = signals.forever().next() {
        ::log::info!(
            "signal {sig}: draining (up to {} ms)",
            server.drain_timeout.as_millis()
        );
    }
    draining.store(true, Ordering::SeqCst);
    for s in &senders {
        let _ = s.send(ShardMsg::Drain);
    }
    for t in threads {
        let _ = t.join();
    }
    writer.finish();
    ::log::info!("stopped");
    Ok(())
}

/// A shard's control task: answers metrics requests; on `Drain`, stops accepting and waits for
/// in-flight requests (up to the drain timeout) before letting the runtime end.
async fn control_loop(
    shard: &Rc<Shard>,
    rx: &flume::Receiver<ShardMsg>,
    listen_fd: std::os::fd::RawFd,
    drain: Duration,
) {
    let reply = |tx: flume::Sender<ShardMetrics>| {
        let _ = tx.try_send(shard.metrics.borrow().clone());
    };
    while let Ok(ShardMsg::Metrics(tx)) = rx.recv_async().await {
        reply(tx);
    }
    shard.drain();
    crate::sys::shutdown_listener(listen_fd);
    ::log::debug!(
        "shard {}: draining with {} in flight",
        shard.id,
        shard.inflight()
    );
    let deadline = std::time::Instant::now() + drain;
    while shard.inflight() > 0 && std::time::Instant::now() < deadline {
        monoio::select! {
            msg = rx.recv_async() => if let Ok(ShardMsg::Metrics(tx)) = msg { reply(tx) },
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
