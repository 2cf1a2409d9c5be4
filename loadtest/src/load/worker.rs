//! One load thread: a monoio runtime running a task per connection, plus (open loop) the
//! dispatcher that sleeps precisely until each request is due and wakes the connection it goes
//! to, and a watchdog that enforces the end of the run.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use super::conn::{Conn, Failure, FdSlots};
use super::report::{FailKind, Recorder};
use super::schedule::{PreciseTimer, Schedule};

/// After the end of the run, requests that are due but not yet sent may still go out this late
/// (a connection task may wake a little after its request's release).
const ISSUE_SLACK: Duration = Duration::from_millis(50);
/// Pause after a failed connect, so a dead target does not make the loop spin.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// What one thread does.
pub(crate) struct Plan {
    pub cfg: Arc<super::Config>,
    pub request: Arc<Vec<u8>>,
    /// Number of connections of this thread.
    pub conns: usize,
    /// Open loop: this thread's schedule and number of requests.
    pub open: Option<(Schedule, u64)>,
    pub t0: Instant,
}

/// Open loop: which of the thread's requests are due, and who waits for them.
struct Gate {
    released: Cell<u64>,
    finished: Cell<bool>,
    waiters: RefCell<Vec<Option<Waker>>>,
}

impl Gate {
    /// Waits until request `j` (handled by connection `c`) is due; false if it never will be.
    async fn wait(&self, c: usize, j: u64) -> bool {
        poll_fn(|cx| {
            if self.released.get() > j {
                Poll::Ready(true)
            } else if self.finished.get() {
                Poll::Ready(false)
            } else {
                self.waiters.borrow_mut()[c] = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }

    fn wake(&self, c: usize) {
        let w = self.waiters.borrow_mut()[c].take();
        if let Some(w) = w {
            w.wake();
        }
    }

    fn release(&self, n: u64) {
        let old = self.released.replace(n);
        let conns = self.waiters.borrow().len() as u64;
        if n - old >= conns {
            (0..conns as usize).for_each(|c| self.wake(c));
        } else {
            (old..n).for_each(|j| self.wake((j % conns) as usize));
        }
    }

    fn finish(&self) {
        self.finished.set(true);
        let conns = self.waiters.borrow().len();
        (0..conns).for_each(|c| self.wake(c));
    }
}

struct Local {
    plan: Plan,
    rec: RefCell<Recorder>,
    fds: FdSlots,
    gate: Gate,
    measure_from: Instant,
    end: Instant,
    hard_stop: Cell<bool>,
    live: Cell<usize>,
}

impl Local {
    fn record(
        &self,
        measured: bool,
        start: Instant,
        conn: &Conn,
        r: Result<super::conn::Reply, Failure>,
    ) {
        let mut rec = self.rec.borrow_mut();
        match r {
            Ok(reply) => rec.ok(measured, start, reply.first_byte, reply.done, &conn.gaps),
            Err(f) => {
                let kind = match f {
                    Failure::Status(_) => FailKind::Status,
                    _ if self.hard_stop.get() => FailKind::Timeout,
                    _ => FailKind::Io,
                };
                let responded = matches!(f, Failure::Status(_));
                rec.fail(measured, kind, responded, &|| f.describe());
            }
        }
    }
}

/// Runs the plan on the current thread's runtime and returns its measurements.
pub(crate) async fn run(plan: Plan) -> Recorder {
    let cfg = plan.cfg.clone();
    let measure_from = plan.t0 + cfg.warmup;
    let end = measure_from + cfg.duration;
    let hard_deadline = end + cfg.grace;
    let local = Rc::new(Local {
        rec: RefCell::new(Recorder::new()),
        fds: RefCell::new(vec![None; plan.conns]),
        gate: Gate {
            released: Cell::new(0),
            finished: Cell::new(false),
            waiters: RefCell::new(vec![None; plan.conns]),
        },
        measure_from,
        end,
        hard_stop: Cell::new(false),
        live: Cell::new(plan.conns),
        plan,
    });
    if let Some((sched, total)) = local.plan.open {
        monoio::spawn(dispatch(local.clone(), sched, total));
    }
    for c in 0..local.plan.conns {
        let local = local.clone();
        monoio::spawn(async move {
            if local.plan.open.is_some() {
                open_connection(&local, c).await;
            } else {
                closed_connection(&local, c).await;
            }
            local.live.set(local.live.get() - 1);
        });
    }
    // Watchdog: at the hard deadline, shut the sockets down so pending reads end.
    while local.live.get() > 0 {
        let now = Instant::now();
        if !local.hard_stop.get() && now >= hard_deadline {
            local.hard_stop.set(true);
            for fd in local.fds.borrow().iter().flatten() {
                unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
            }
            local.gate.finish();
        }
        if now >= hard_deadline + Duration::from_secs(2) {
            break;
        }
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    local.rec.replace(Recorder::new())
}

/// Open loop: releases each request when it falls due and wakes its connection.
async fn dispatch(local: Rc<Local>, sched: Schedule, total: u64) {
    let mut timer = PreciseTimer::new().ok();
    let mut released = 0;
    while released < total && !local.hard_stop.get() {
        let due = local.plan.t0 + sched.offset(released);
        if due > Instant::now() {
            // Should the timerfd fail, fall back to the (millisecond) timer wheel for good.
            let precise = match &mut timer {
                Some(t) => t.sleep_until(due).await.is_ok(),
                None => false,
            };
            if !precise {
                timer = None;
                monoio::time::sleep_until(due.into()).await;
            }
        }
        released = sched.due_from(released, local.plan.t0.elapsed()).min(total);
        local.gate.release(released);
    }
    local.gate.finish();
}

async fn open_connection(local: &Local, c: usize) {
    let (sched, total) = local.plan.open.as_ref().expect("open loop");
    let stride = local.plan.conns as u64;
    let mut conn = Conn::new(local.plan.cfg.addr, c, local.plan.request.to_vec());
    // Connect ahead of the first request; a failure is retried (and counted) then.
    let _ = conn.connect(&local.fds).await;
    let mut j = c as u64;
    while j < *total && local.gate.wait(c, j).await {
        let scheduled = local.plan.t0 + sched.offset(j);
        let measured = scheduled >= local.measure_from;
        if local.hard_stop.get() || Instant::now() >= local.end + ISSUE_SLACK {
            // Stop issuing: what this connection still owes counts as timed out.
            while j < *total {
                let measured = local.plan.t0 + sched.offset(j) >= local.measure_from;
                let what = || "not sent before the end of the run".to_string();
                local
                    .rec
                    .borrow_mut()
                    .fail(measured, FailKind::Timeout, false, &what);
                j += stride;
            }
            break;
        }
        let lag = Instant::now().saturating_duration_since(scheduled);
        local.rec.borrow_mut().sent(measured, lag);
        let r = conn
            .exchange(&local.fds, local.plan.cfg.stream, &local.hard_stop)
            .await;
        let backoff = matches!(r, Err(Failure::Connect(_)));
        local.record(measured, scheduled, &conn, r);
        if backoff {
            monoio::time::sleep(CONNECT_BACKOFF).await;
        }
        j += stride;
    }
    conn.close(&local.fds);
}

async fn closed_connection(local: &Local, c: usize) {
    let mut conn = Conn::new(local.plan.cfg.addr, c, local.plan.request.to_vec());
    let ramp = local.plan.cfg.ramp;
    // Without a ramp, connect ahead of the start. With one, connect when this connection's turn
    // comes: thousands of connects at once would overflow a small accept queue.
    if ramp.is_zero() {
        let _ = conn.connect(&local.fds).await;
    }
    let first = local.plan.t0 + ramp_offset(ramp, c, local.plan.conns);
    let now = Instant::now();
    if first > now {
        monoio::time::sleep(first - now).await;
    }
    loop {
        let start = Instant::now();
        if start >= local.end || local.hard_stop.get() {
            break;
        }
        let r = conn
            .exchange(&local.fds, local.plan.cfg.stream, &local.hard_stop)
            .await;
        let backoff = matches!(r, Err(Failure::Connect(_)));
        local.record(start >= local.measure_from, start, &conn, r);
        if backoff {
            monoio::time::sleep(CONNECT_BACKOFF).await;
        }
    }
    conn.close(&local.fds);
}

/// When connection `c` of `n` sends its first request, relative to the start.
fn ramp_offset(ramp: Duration, c: usize, n: usize) -> Duration {
    ramp.mul_f64(c as f64 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ramp_spreads_first_requests_evenly() {
        let ramp = Duration::from_millis(1000);
        let starts: Vec<_> = (0..4).map(|c| ramp_offset(ramp, c, 4)).collect();
        assert_eq!(
            starts,
            [0, 250, 500, 750].map(Duration::from_millis).to_vec()
        );
        assert_eq!(ramp_offset(Duration::ZERO, 3, 4), Duration::ZERO);
        assert_eq!(ramp_offset(ramp, 0, 0), Duration::ZERO);
    }
}
