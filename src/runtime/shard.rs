//! A shard: one pinned thread's share of the gateway. It owns its upstream pools, metrics and
//! access-log queue; it accepts on its own SO_REUSEPORT listener and serves each connection to
//! the end on this thread.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use monoio::net::{TcpListener, TcpStream};

use super::generation::{Generation, Tls};
use crate::auth::KeyTable;
use crate::config::Snapshot;
use crate::http::conn::{Conn, Limits};
use crate::http::response::{self, Meta};
use crate::observe::log::Sink;
use crate::observe::metrics::ShardMetrics;
use crate::pipeline;
use crate::providers::translate::Wire;

pub struct Shard {
    pub id: usize,
    /// How many shards the process runs.
    pub count: usize,
    /// The generation new requests take.
    current: RefCell<Rc<Generation>>,
    /// Built on `Prepare`, waiting for `Commit`.
    pending: RefCell<Option<Rc<Generation>>>,
    /// The key table new requests take (published apart from config). The `Rc` is on
    /// purpose: a request clones it (a plain increment on this shard's own memory), where
    /// cloning the `Arc` would bump a count every shard shares on every request.
    #[allow(clippy::redundant_allocation)]
    keys: RefCell<Rc<Arc<KeyTable>>>,
    pub metrics: RefCell<ShardMetrics>,
    /// This shard's response cache (it outlives generations: keys name aliases, not indices).
    pub cache: crate::cache::Cache,
    /// This shard's leases of every limit it has charged.
    pub leases: RefCell<crate::limits::Leases>,
    /// Where settled requests go for the spend ledger (none when the ledger is off).
    pub ledger: Option<Arc<crate::control::ledger::Outbox>>,
    /// End users' limits: the registry, and this shard's cache of it (with the registry's
    /// version it was filled at).
    pub users: Arc<crate::limits::Users>,
    user_cache: RefCell<UserCache>,
    pub log: Sink,
    /// The current generation's connection limits (read before a request takes it).
    limits: Cell<Limits>,
    pub draining: Cell<bool>,
    /// Idle connections waiting for a next request, woken to close when the shard drains.
    /// One waker per open connection (by connection number), replaced on every wait.
    drain_waiters: RefCell<std::collections::HashMap<u64, std::task::Waker>>,
    next_conn: Cell<u64>,
    next_id: Cell<u64>,
    id_prefix: u32,
    /// Health-probe tasks running: (alias, target) → (what they probe, task token).
    pub(super) probes: RefCell<std::collections::HashMap<(String, String), (u64, u64)>>,
    next_probe: Cell<u64>,
    rng: Cell<u64>,
    /// Requests handled so far (the idle trim's activity signal).
    served: Cell<u64>,
    /// Request scratch buffers not in use; sized to the recent peak of concurrent requests.
    scratch_pool: RefCell<ScratchPool>,
    /// A request panicked: the router's in-flight counts may include its attempt, until the
    /// shard next has no request in flight and clears them (`settle_after_panic`).
    after_panic: Cell<bool>,
    /// Test fault injection (see `inject_fault`); always false in release builds.
    #[cfg(debug_assertions)]
    faults: bool,
}

/// Free scratch buffers, and how many are out: a burst's extra buffers are freed a check
/// interval after it, not kept until the shard next goes idle (a busy shard never does).
#[derive(Default)]
struct ScratchPool {
    free: Vec<pipeline::Scratch>,
    out: usize,
    /// Most buffers out at once since the last `shrink`.
    peak: usize,
}

impl ScratchPool {
    fn take(&mut self) -> pipeline::Scratch {
        self.out += 1;
        self.peak = self.peak.max(self.out);
        self.free.pop().unwrap_or_default()
    }

    fn put(&mut self, mut scratch: pipeline::Scratch) {
        self.out = self.out.saturating_sub(1);
        if self.free.len() < SCRATCH_POOL_MAX {
            scratch.trim();
            self.free.push(scratch);
        }
    }

    /// Keeps what the last interval's peak would need again (at least `floor`).
    fn shrink(&mut self, floor: usize) {
        let need = self.peak.saturating_sub(self.out).max(floor);
        self.free.truncate(need);
        self.peak = self.out;
    }
}

/// What every shard shares with control: the limit pool, its ledger outbox, the end users'
/// registry.
pub struct Shared {
    pub pool: Arc<dyn crate::limits::Pool>,
    pub ledger: Option<Arc<crate::control::ledger::Outbox>>,
    pub users: Arc<crate::limits::Users>,
}

impl Shared {
    /// A pool of its own, no ledger, no end-user limits (benches and tests).
    pub fn standalone() -> Shared {
        Shared {
            pool: Arc::new(crate::limits::InProcess),
            ledger: None,
            users: Arc::new(crate::limits::Users::new(
                Default::default(),
                Default::default(),
                0,
            )),
        }
    }
}

/// A shard's copy of the end users' limits it has seen, with the registry version it holds.
type UserCache = (
    u64,
    std::collections::HashMap<Box<str>, Arc<[crate::limits::Limit]>>,
);

/// End users a shard remembers the limits of; past it, the cache starts over.
const USER_CACHE: usize = 10_000;

/// Free scratch buffers a shard keeps at most (more concurrent requests allocate, then free).
const SCRATCH_POOL_MAX: usize = 1024;
/// Free scratch buffers a shard keeps however quiet (each is ~25 KiB, mostly parser storage;
/// a burst allocates the rest again).
const SCRATCH_POOL_IDLE: usize = 2;
/// How often a shard checks whether it went idle.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Shard {
    /// A pseudo-random number (xorshift64*) for routing choices and backoff jitter.
    pub fn rand(&self) -> u64 {
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn take_scratch(&self) -> pipeline::Scratch {
        self.scratch_pool.borrow_mut().take()
    }

    pub(crate) fn put_scratch(&self, scratch: pipeline::Scratch) {
        self.scratch_pool.borrow_mut().put(scratch);
    }

    pub fn new(
        (id, count): (usize, usize),
        generation: Generation,
        keys: Arc<KeyTable>,
        log: Sink,
        id_prefix: u32,
        shared: Shared,
    ) -> Self {
        let Shared {
            pool,
            ledger,
            users,
        } = shared;
        Shard {
            id,
            count,
            leases: RefCell::new(crate::limits::Leases::new(pool, count)),
            ledger,
            users,
            user_cache: RefCell::new((0, std::collections::HashMap::new())),
            metrics: RefCell::new(ShardMetrics::new()),
            cache: crate::cache::Cache::default(),
            limits: Cell::new(limits(&generation.config)),
            current: RefCell::new(Rc::new(generation)),
            pending: RefCell::new(None),
            keys: RefCell::new(Rc::new(keys)),
            probes: RefCell::new(std::collections::HashMap::new()),
            next_probe: Cell::new(0),
            log,
            draining: Cell::new(false),
            drain_waiters: RefCell::new(std::collections::HashMap::new()),
            next_conn: Cell::new(0),
            scratch_pool: RefCell::new(ScratchPool::default()),
            served: Cell::new(0),
            rng: Cell::new(0x9e37_79b9_7f4a_7c15 ^ ((id_prefix as u64) << 8 | id as u64)),
            next_id: Cell::new(0),
            id_prefix,
            after_panic: Cell::new(false),
            #[cfg(debug_assertions)]
            faults: std::env::var_os("SHARDGATE_TEST_FAULTS").is_some_and(|v| v == "1"),
        }
    }

    /// The generation a request starting now runs under.
    pub fn generation(&self) -> Rc<Generation> {
        self.current.borrow().clone()
    }

    /// The key table a request starting now authenticates against.
    #[allow(clippy::redundant_allocation)]
    pub fn keys(&self) -> Rc<Arc<KeyTable>> {
        self.keys.borrow().clone()
    }

    pub fn limits(&self) -> Limits {
        self.limits.get()
    }

    /// Phase one of an install: builds the next generation from the current one (carrying
    /// state over) and holds it until `commit`.
    pub fn prepare(&self, id: u64, config: Arc<Snapshot>, tls: &Tls) {
        let next = self.generation().next(id, config, tls);
        *self.pending.borrow_mut() = Some(Rc::new(next));
    }

    /// Phase two: the prepared generation `id` becomes current. Requests already running keep
    /// theirs. Returns false when nothing (or another id) was prepared.
    pub fn commit(self: &Rc<Self>, id: u64) -> bool {
        let next = match self.pending.borrow_mut().take() {
            Some(g) if g.id == id => g,
            other => {
                *self.pending.borrow_mut() = other;
                return false;
            }
        };
        self.limits.set(limits(&next.config));
        *self.current.borrow_mut() = next;
        super::health::restart(self);
        true
    }

    /// Drops a prepared generation that will not be committed.
    pub fn abort(&self, id: u64) {
        let mut pending = self.pending.borrow_mut();
        if pending.as_ref().is_some_and(|g| g.id == id) {
            *pending = None;
        }
    }

    pub fn set_keys(&self, keys: Arc<KeyTable>) {
        *self.keys.borrow_mut() = Rc::new(keys);
    }

    /// The limits of end user `user`: from this shard's cache, else from the registry (which
    /// makes them on first sight).
    pub fn user_limits(&self, user: &str) -> Arc<[crate::limits::Limit]> {
        let version = self
            .users
            .version
            .load(std::sync::atomic::Ordering::Acquire);
        let mut cache = self.user_cache.borrow_mut();
        if cache.0 != version || cache.1.len() >= USER_CACHE {
            *cache = (version, std::collections::HashMap::new());
        }
        if let Some(l) = cache.1.get(user) {
            return l.clone();
        }
        let made = self.users.of(user);
        cache.1.insert(user.into(), made.clone());
        made
    }

    /// A token for a new health-probe task.
    pub(super) fn probe_token(&self) -> u64 {
        let n = self.next_probe.get() + 1;
        self.next_probe.set(n);
        n
    }

    /// A new request id: process prefix, shard, counter. Unique within the process's life and,
    /// thanks to the random prefix, across restarts in practice.
    pub fn request_id(&self, out: &mut [u8; 32]) -> usize {
        let n = self.next_id.get();
        self.next_id.set(n + 1);
        // `req_` + 8 hex (process) + 2 hex (shard) + 16 hex (counter), written in place.
        out[..4].copy_from_slice(b"req_");
        let mut at = 4;
        for (value, digits) in [
            (self.id_prefix as u64, 8),
            (self.id as u64 & 0xff, 2),
            (n, 16),
        ] {
            for i in (0..digits).rev() {
                out[at] = b"0123456789abcdef"[(value >> (i * 4)) as usize & 0xf];
                at += 1;
            }
        }
        at
    }

    /// Starts draining: stop taking new requests and wake idle connections so they close.
    pub fn drain(&self) {
        self.draining.set(true);
        let waiters: Vec<_> = self
            .drain_waiters
            .borrow_mut()
            .drain()
            .map(|(_, w)| w)
            .collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the shard drains; `conn` is the waiting connection's number.
    pub fn drained(&self, conn: u64) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.draining.get() {
                std::task::Poll::Ready(())
            } else {
                self.drain_waiters
                    .borrow_mut()
                    .insert(conn, cx.waker().clone());
                std::task::Poll::Pending
            }
        })
    }

    pub fn inflight(&self) -> i64 {
        self.metrics.borrow().inflight
    }

    /// After a caught panic, once no request is in flight: clears the router's in-flight
    /// counts (the panicked attempt never reported its end).
    fn settle_after_panic(&self) {
        if self.after_panic.get() && self.inflight() == 0 {
            self.generation().router.borrow_mut().clear_in_flight();
            self.after_panic.set(false);
        }
    }

    /// Test builds only, and only with `SHARDGATE_TEST_FAULTS=1` in the environment: a request
    /// for `/__faults/panic` panics, so tests can prove a panic stays inside its connection.
    #[cfg(debug_assertions)]
    pub fn inject_fault(&self, path: &[u8]) {
        if self.faults && path == b"/__faults/panic" {
            panic!("injected fault: /__faults/panic");
        }
    }
}

fn limits(config: &Snapshot) -> Limits {
    let s = &config.server;
    Limits {
        max_header_bytes: s.max_header_bytes,
        max_body_bytes: s.max_body_bytes,
        keepalive_timeout: s.keepalive_timeout,
        header_timeout: s.header_timeout,
        write_timeout: s.write_timeout,
    }
}

/// How often at most a shard logs that it is refusing connections.
const REJECT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts until the listener is shut down (drain). Above `server.max_connections` a new
/// connection is closed at once (counted, and logged at most every [`REJECT_LOG_EVERY`]):
/// the kernel's backlog is no place to park it, and a quick close lets the client (or its load
/// balancer) go elsewhere.
pub async fn accept_loop(shard: Rc<Shard>, listener: TcpListener) {
    let mut last_log: Option<std::time::Instant> = None;
    let mut unlogged = 0u64;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if shard.draining.get() {
                    continue;
                }
                let max = shard.generation().config.server.max_connections as i64;
                if shard.metrics.borrow().connections_open >= max {
                    shard.metrics.borrow_mut().connections_rejected += 1;
                    unlogged += 1;
                    if last_log.is_none_or(|t| t.elapsed() >= REJECT_LOG_EVERY) {
                        log::warn!(
                            "shard {}: at server.max_connections ({max}); closed {unlogged} new connection(s)",
                            shard.id
                        );
                        last_log = Some(std::time::Instant::now());
                        unlogged = 0;
                    }
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                monoio::spawn(serve(shard.clone(), stream));
            }
            Err(e) if shard.draining.get() => {
                log::debug!("shard {}: accept stopped: {e}", shard.id);
                return;
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spin.
                log::warn!("shard {}: accept failed: {e}", shard.id);
                monoio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Gives memory back. Every check interval: free scratch buffers beyond the last interval's
/// peak are dropped, and pooled upstream connections past their idle timeout are closed. Once
/// a shard that served requests has taken no new one for a whole interval and has none in
/// flight, it also drops the read buffers of its pooled upstream connections and has the
/// allocator return freed pages to the OS, once. A busy shard never pays for that (under
/// steady light load "none in flight" alone is true most of the time: it used to trim every
/// second mid-load, and the requests after each trim refilled the pool).
pub async fn trim_when_idle(shard: Rc<Shard>) {
    let mut served = shard.served.get();
    let mut trimmed = true;
    loop {
        monoio::time::sleep(IDLE_CHECK).await;
        let generation = shard.generation();
        generation.upstream.evict_expired(&generation.config);
        drop(generation);
        shard.scratch_pool.borrow_mut().shrink(SCRATCH_POOL_IDLE);
        shard.settle_after_panic();
        let now = shard.served.get();
        if now != served {
            served = now;
            trimmed = false;
        } else if !trimmed && shard.metrics.borrow().inflight == 0 {
            shard.generation().upstream.release_idle_buffers();
            // Unspent leases go back to their pools, for shards that are busy.
            shard.leases.borrow_mut().release_all();
            crate::sys::allocator_collect();
            trimmed = true;
        }
    }
}

/// Serves one client connection: requests in order until close, error, or drain.
async fn serve(shard: Rc<Shard>, stream: TcpStream) {
    {
        let mut m = shard.metrics.borrow_mut();
        m.connections_open += 1;
        m.connections_total += 1;
    }
    let number = shard.next_conn.get();
    shard.next_conn.set(number + 1);
    let mut conn = Conn::new(stream, shard.limits().write_timeout);
    loop {
        // An idle connection closes when the shard drains; the dropped read only loses bytes
        // of a connection that is closing anyway.
        let limits = shard.limits();
        let next = monoio::select! {
            h = conn.read_head(&limits) => h,
            _ = shard.drained(number) => break,
        };
        let head = match next {
            Ok(Some(h)) => h,
            Ok(None) => break,
            Err(e) => {
                if e.kind != crate::error::Kind::ClientDisconnected {
                    let mut id = [0u8; 32];
                    let n = shard.request_id(&mut id);
                    let meta = Meta {
                        request_id: &id[..n],
                        keep_alive: false,
                        timing: None,
                        route: None,
                        rates: None,
                        cache: None,
                        guardrails: None,
                    };
                    // The head did not parse, so the ingress is unknown: OpenAI's shape.
                    response::error(&mut conn.wbuf, &e, &meta, Wire::OpenAi);
                    let _ = conn.flush().await;
                    pipeline::settle_early(&shard, &id[..n], &e);
                }
                break;
            }
        };
        shard.served.set(shard.served.get() + 1);
        let mut scratch = shard.take_scratch();
        shard.metrics.borrow_mut().inflight += 1;
        // Boxed: the request's future is large (the relay's states), and an idle keep-alive
        // connection should not carry its space while it waits for the next head.
        let request = Box::pin(pipeline::handle(&shard, &mut conn, &mut scratch, head));
        let served = CatchUnwind(request).await;
        shard.metrics.borrow_mut().inflight -= 1;
        let keep = match served {
            Ok(keep) => keep,
            Err(panic) => {
                // A bug on this request's path: this connection closes (its bytes may be half
                // written), the shard and every other connection on it go on.
                shard.metrics.borrow_mut().panics += 1;
                // Its limit charges come back (a concurrency slot would stay taken otherwise).
                let none = crate::limits::Actual::default();
                shard.leases.borrow_mut().settle(&scratch.charges, &none);
                shard.after_panic.set(true);
                shard.settle_after_panic();
                log::error!(
                    "shard {}: a request panicked ({}); its connection was closed",
                    shard.id,
                    panic_message(&panic)
                );
                break;
            }
        };
        shard.put_scratch(scratch);
        if !keep || shard.draining.get() {
            break;
        }
    }
    shard.drain_waiters.borrow_mut().remove(&number);
    let mut m = shard.metrics.borrow_mut();
    m.connections_open -= 1;
    m.write_timeouts += u64::from(conn.write_timeouts);
}

/// A boxed future whose panics come back as `Err` instead of unwinding through the shard's
/// runtime (which would end every connection on the shard).
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        // Unwind safety: shard state is `RefCell`/`Cell`, whose guards are released by the
        // unwind; what the dropped request held (an upstream connection, a scratch) is dropped.
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every in-flight request holds its future on the heap: at thousands of concurrent streams
    /// its size is most of the gateway's memory per stream. Large states belong behind a `Box`
    /// on the rare paths that need them (a hedge race, say), not inline in every request.
    #[test]
    fn a_request_future_stays_small() {
        let cfg = "server: { listen: 127.0.0.1:0, admin_listen: off, shards: 1, access_log: off }\n\
                   providers: { up: { protocol: openai, base_url: \"http://127.0.0.1:9/v1\" } }\n\
                   models: { m: { targets: [ { provider: up, model: m } ] } }\n";
        let snapshot = Arc::new(crate::config::load_str(cfg, &|_| None).unwrap());
        let (_writer, mut sinks) =
            crate::observe::log::start(&crate::config::AccessLog::Off, 1).unwrap();
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        let size = rt.block_on(async {
            let tls: Tls = crate::upstream::tls::configs(&snapshot).unwrap().into();
            let generation = Generation::first(snapshot.clone(), &tls);
            let keys = Arc::new(KeyTable::default());
            let shard = Shard::new(
                (0, 1),
                generation,
                keys,
                sinks.remove(0),
                1,
                Shared::standalone(),
            );
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let mut conn = Conn::new(stream, std::time::Duration::from_secs(1));
            let bytes = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n\r\n";
            let head = crate::http::request::parse(bytes, 8192).unwrap().unwrap();
            let mut scratch = shard.take_scratch();
            let fut = pipeline::handle(&shard, &mut conn, &mut scratch, head);
            std::mem::size_of_val(&fut)
        });
        eprintln!("request future: {size} bytes");
        // Past 8 KiB its move into the box also costs more than its size: at 8,576 bytes
        // callgrind counted ~8,600 instructions of memcpy per request, at 8,064 ~780 (glibc's
        // copy strategy changes there).
        assert!(size <= 8 * 1024, "the request future grew to {size} bytes");
    }

    #[test]
    fn a_burst_of_scratch_buffers_is_freed_one_interval_later() {
        let mut pool = ScratchPool::default();
        let burst: Vec<_> = (0..10).map(|_| pool.take()).collect();
        burst.into_iter().for_each(|s| pool.put(s));
        // The interval with the burst: its peak may come again, so all ten stay.
        pool.shrink(2);
        assert_eq!(pool.free.len(), 10);
        // A quieter interval: three out at most, one of them still out. Two more would do.
        let mut three: Vec<_> = (0..3).map(|_| pool.take()).collect();
        pool.put(three.pop().unwrap());
        pool.put(three.pop().unwrap());
        pool.shrink(2);
        assert_eq!(pool.free.len(), 2);
        // The last one back, then a quiet interval: the floor.
        pool.put(three.pop().unwrap());
        pool.shrink(2);
        pool.shrink(2);
        assert_eq!((pool.free.len(), pool.out), (2, 0));
    }
}
