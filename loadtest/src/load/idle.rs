//! Idle keep-alive connections held open beside the load (`--idle N`).
//!
//! A thread of its own (own runtime, pinned like the load) opens N connections, each sending one
//! small request (`GET /v1/models` by default) so that the target has parsed a request on it and
//! holds it as a kept-alive HTTP connection, not merely an accepted socket. They then sit idle,
//! with no read pending, for the whole load run. At the end each one sends one more request on
//! the same socket, never reconnecting and never retrying: a connection the target closed, or
//! that no longer answers, counts as failed.
//!
//! Opening is done by a bounded number of tasks so the target's accept queue does not overflow
//! (a dropped SYN would stall a connection for a second). Every phase has a deadline, enforced
//! like the load's by shutting the sockets down, so a silent target cannot hang the run.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::conn::{Conn, FdSlots};

/// Connections opened (or probed) at the same time.
const PARALLEL: usize = 64;
/// The longest the opening phase may take.
const OPEN_LIMIT: Duration = Duration::from_secs(60);
/// An idle connection's read buffer before its first response (it grows if needed).
const IDLE_BUF: usize = 512;

/// What became of the idle connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleOutcome {
    /// Connections asked for.
    pub requested: usize,
    /// Connections that answered their first request and stayed open.
    pub opened: usize,
    /// Connections that answered a second request on the same socket after the run.
    pub open: usize,
    /// `requested - open`.
    pub failed: usize,
    /// The first failure seen, in either phase.
    pub first_error: Option<String>,
}

/// The idle connections' thread, between the opening and the check.
pub(crate) struct Holder {
    check: Arc<AtomicBool>,
    thread: Option<JoinHandle<io::Result<IdleOutcome>>>,
}

/// What one idle thread does.
#[derive(Clone)]
pub(crate) struct Spec {
    pub addr: SocketAddr,
    pub count: usize,
    /// The request sent when opening and when checking.
    pub request: Arc<Vec<u8>>,
    /// How long the check may take.
    pub grace: Duration,
    pub cpu: Option<usize>,
}

impl Holder {
    /// Opens the connections and returns once they are all open (or have failed).
    pub fn open(spec: Spec) -> io::Result<Holder> {
        let check = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = check.clone();
        let thread = std::thread::Builder::new()
            .name("loadgen-idle".into())
            .spawn(move || hold_thread(spec, flag, tx))?;
        let mut holder = Holder {
            check,
            thread: Some(thread),
        };
        match rx.recv() {
            Ok(()) => Ok(holder),
            // The thread ended before opening was over: its result says why.
            Err(_) => Err(match holder.finish() {
                Err(e) => e,
                Ok(_) => io::Error::other("the idle connection thread ended early"),
            }),
        }
    }

    /// Sends one more request on every held connection and reports how many answered.
    pub fn check(mut self) -> io::Result<IdleOutcome> {
        self.finish()
    }

    fn finish(&mut self) -> io::Result<IdleOutcome> {
        self.check.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("idle connection thread panicked")),
            None => Err(io::Error::other("idle connections already checked")),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        // A run that failed still lets the thread end (it waits for this flag).
        self.check.store(true, Ordering::SeqCst);
    }
}

fn hold_thread(
    spec: Spec,
    check: Arc<AtomicBool>,
    opened: mpsc::Sender<()>,
) -> io::Result<IdleOutcome> {
    if let Some(id) = spec.cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    Ok(rt.block_on(hold(spec, check, opened)))
}

/// The sockets of the idle connections and the deadline of the current phase.
struct Shared {
    fds: FdSlots,
    deadline: Cell<Instant>,
    stopped: Cell<bool>,
    done: Cell<bool>,
    first_error: RefCell<Option<String>>,
}

impl Shared {
    fn note(&self, what: impl FnOnce() -> String) {
        let mut e = self.first_error.borrow_mut();
        if e.is_none() {
            *e = Some(what());
        }
    }
}

/// Connections `k, k + PARALLEL, ...`, owned by one task at a time.
type Group = Vec<Conn>;

async fn hold(spec: Spec, check: Arc<AtomicBool>, opened_tx: mpsc::Sender<()>) -> IdleOutcome {
    let shared = Rc::new(Shared {
        fds: RefCell::new(vec![None; spec.count]),
        deadline: Cell::new(Instant::now() + OPEN_LIMIT),
        stopped: Cell::new(false),
        done: Cell::new(false),
        first_error: RefCell::new(None),
    });
    monoio::spawn(watchdog(shared.clone()));

    let tasks = PARALLEL.min(spec.count.max(1));
    let mut handles = Vec::with_capacity(tasks);
    for k in 0..tasks {
        let (shared, spec) = (shared.clone(), spec.clone());
        handles.push(monoio::spawn(async move {
            open_group(&shared, &spec, k, tasks).await
        }));
    }
    let mut groups = Vec::with_capacity(tasks);
    for h in handles {
        groups.push(h.await);
    }
    let opened = groups.iter().map(Vec::len).sum();
    let _ = opened_tx.send(());

    // Hold: nothing pending on the sockets, just wait to be told the run is over.
    shared
        .deadline
        .set(Instant::now() + Duration::from_secs(365 * 86_400));
    while !check.load(Ordering::SeqCst) {
        monoio::time::sleep(Duration::from_millis(10)).await;
    }

    shared.deadline.set(Instant::now() + spec.grace);
    let handles: Vec<_> = groups
        .into_iter()
        .map(|g| {
            let shared = shared.clone();
            monoio::spawn(async move { check_group(&shared, g).await })
        })
        .collect();
    let mut open = 0;
    for h in handles {
        open += h.await;
    }
    shared.done.set(true);
    IdleOutcome {
        requested: spec.count,
        opened,
        open,
        failed: spec.count - open,
        first_error: shared.first_error.borrow_mut().take(),
    }
}

/// Shuts every socket down when the current phase's deadline passes, so pending reads end.
async fn watchdog(shared: Rc<Shared>) {
    while !shared.done.get() {
        if !shared.stopped.get() && Instant::now() >= shared.deadline.get() {
            shared.stopped.set(true);
            shutdown_all(&shared.fds.borrow());
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn shutdown_all(fds: &[Option<RawFd>]) {
    for fd in fds.iter().flatten() {
        // SAFETY: the fd belongs to a connection that is still open (closing forgets it first);
        // shutdown does not free it.
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
}

async fn open_group(shared: &Shared, spec: &Spec, k: usize, stride: usize) -> Group {
    let mut group = Vec::with_capacity(spec.count / stride + 1);
    for i in (k..spec.count).step_by(stride) {
        if shared.stopped.get() {
            shared.note(|| "not opened before the opening deadline".into());
            break;
        }
        let mut conn = Conn::with_buffer(spec.addr, i, spec.request.to_vec(), IDLE_BUF);
        let r = match conn.connect(&shared.fds).await {
            Ok(()) => conn.probe(&shared.fds).await.map_err(|f| f.describe()),
            Err(e) => Err(format!("connect: {e}")),
        };
        match r {
            Ok(_) if conn.is_open() => {
                conn.release_buffer();
                group.push(conn);
            }
            Ok(_) => {
                shared.note(|| "opening: the target closed the connection after answering".into())
            }
            Err(e) => {
                conn.close(&shared.fds);
                shared.note(|| format!("opening: {e}"));
            }
        }
    }
    group
}

async fn check_group(shared: &Shared, mut group: Group) -> usize {
    let mut open = 0;
    for conn in &mut group {
        match conn.probe(&shared.fds).await {
            Ok(_) => open += 1,
            Err(f) => shared.note(|| format!("after the run: {}", f.describe())),
        }
        conn.close(&shared.fds);
    }
    open
}
