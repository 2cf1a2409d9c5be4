//! The open-loop schedule (request `i` is due at `t0 + i/R`) and the precise timer that releases
//! requests when they fall due.
//!
//! monoio's timer wheel has a 1 ms resolution, which would add up to a millisecond of the load
//! generator's own lateness to every latency measured from the scheduled time. A `timerfd` with
//! an absolute deadline wakes the runtime within microseconds instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::{Duration, Instant};

use monoio::buf::VecBuf;
use monoio::io::AsyncReadRent;

/// The share of an `R` req/s schedule that one of `n` threads issues: global requests
/// `k, k+n, k+2n, ...`, the global request `i` being due `ceil(i * 1e9 / R)` ns after the start.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    rate: f64,
    first: u64,
    stride: u64,
}

impl Schedule {
    /// The whole schedule at `rate` requests per second (one thread).
    pub fn new(rate: f64) -> Schedule {
        Schedule::for_thread(rate, 0, 1)
    }

    /// Thread `k` of `n`'s part of the schedule.
    pub fn for_thread(rate: f64, k: usize, n: usize) -> Schedule {
        assert!(rate > 0.0 && rate.is_finite(), "rate must be positive");
        Schedule {
            rate,
            first: k as u64,
            stride: n.max(1) as u64,
        }
    }

    /// When this thread's `j`-th request is due, relative to the start.
    pub fn offset(&self, j: u64) -> Duration {
        let i = self.first + j * self.stride;
        Duration::from_nanos((i as f64 * 1e9 / self.rate).ceil() as u64)
    }

    /// How many of this thread's requests are due at `elapsed` (offset <= elapsed), counting on
    /// from `from` (a count known to be due already).
    pub fn due_from(&self, from: u64, elapsed: Duration) -> u64 {
        let mut n = from;
        while self.offset(n) <= elapsed {
            n += 1;
        }
        n
    }

    /// How many of this thread's requests are scheduled strictly before `end`.
    pub fn count_before(&self, end: Duration) -> u64 {
        let per_thread = self.rate / self.stride as f64;
        let mut n = (end.as_secs_f64() * per_thread).floor() as u64;
        while n > 0 && self.offset(n - 1) >= end {
            n -= 1;
        }
        while self.offset(n) < end {
            n += 1;
        }
        n
    }
}

/// A precise sleep for the runtime thread: a `timerfd` (CLOCK_MONOTONIC, absolute deadlines),
/// read through monoio like a stream so the runtime parks until it fires.
///
/// monoio has no type for arbitrary pollable fds; `UnixStream` is used for its `readv`, which
/// maps to `IORING_OP_READV` (io_uring) or readiness plus `readv(2)` (epoll), both of which work
/// on a timerfd. Nothing else of the stream is used.
pub(crate) struct PreciseTimer {
    io: monoio::net::UnixStream,
    buf: Option<VecBuf>,
    /// An `Instant` and the CLOCK_MONOTONIC time read right after it.
    base: (Instant, Duration),
}

fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl PreciseTimer {
    /// Creates the timer; call on a runtime thread.
    pub fn new() -> io::Result<PreciseTimer> {
        let mut flags = libc::TFD_CLOEXEC;
        // The epoll driver needs a non-blocking fd; io_uring would answer EAGAIN on one.
        if monoio::utils::is_legacy() {
            flags |= libc::TFD_NONBLOCK;
        }
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let std = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
        let io = monoio::net::UnixStream::from_std(std)?;
        let base = (Instant::now(), monotonic_now());
        let buf = Some(VecBuf::from(vec![vec![0u8; 8]]));
        Ok(PreciseTimer { io, buf, base })
    }

    /// Sleeps until `at` (returns at once if it has passed).
    pub async fn sleep_until(&mut self, at: Instant) -> io::Result<()> {
        if at <= Instant::now() {
            return Ok(());
        }
        let abs = self.base.1 + at.saturating_duration_since(self.base.0);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: abs.as_secs() as libc::time_t,
                tv_nsec: abs.subsec_nanos() as libc::c_long,
            },
        };
        let fd = self.io.as_raw_fd();
        let r = unsafe {
            libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, std::ptr::null_mut())
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let buf = self.buf.take().expect("timer buffer");
        let (res, buf) = self.io.readv(buf).await;
        self.buf = Some(buf);
        res.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_rate() {
        let s = Schedule::new(1000.0);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(2500), Duration::from_millis(2500));
        let s = Schedule::new(3.0);
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_334));
        assert_eq!(s.offset(3), Duration::from_secs(1));
    }

    #[test]
    fn threads_split_the_global_schedule_exactly() {
        let rate = 777.0;
        let global = Schedule::new(rate);
        let mut merged: Vec<Duration> = (0..3)
            .flat_map(|k| {
                let s = Schedule::for_thread(rate, k, 3);
                (0..100).map(move |j| s.offset(j))
            })
            .collect();
        merged.sort();
        let expected: Vec<Duration> = (0..300).map(|i| global.offset(i)).collect();
        assert_eq!(merged, expected);
    }

    #[test]
    fn due_and_count_agree_with_offsets() {
        for rate in [1.0, 7.0, 200.0, 2000.0, 12345.6] {
            for (k, n) in [(0, 1), (1, 2), (2, 3)] {
                let s = Schedule::for_thread(rate, k, n);
                for j in 0..50 {
                    let at = s.offset(j);
                    assert_eq!(s.due_from(0, at), j + 1, "rate {rate} j {j}");
                    assert_eq!(s.count_before(at), j, "rate {rate} j {j}");
                    if at > Duration::ZERO {
                        assert_eq!(s.due_from(0, at - Duration::from_nanos(1)), j);
                    }
                }
            }
        }
    }

    #[test]
    fn count_before_matches_rate_times_duration() {
        let s = Schedule::new(2000.0);
        assert_eq!(s.count_before(Duration::from_secs(10)), 20_000);
        let a = Schedule::for_thread(2000.0, 0, 2).count_before(Duration::from_secs(1));
        let b = Schedule::for_thread(2000.0, 1, 2).count_before(Duration::from_secs(1));
        assert_eq!(a + b, 2000);
    }

    fn precise_sleeps(legacy: bool) {
        let body = async {
            let mut t = PreciseTimer::new().unwrap();
            let mut late = Vec::new();
            for _ in 0..20 {
                let at = Instant::now() + Duration::from_micros(700);
                t.sleep_until(at).await.unwrap();
                let now = Instant::now();
                assert!(now >= at);
                late.push(now - at);
            }
            t.sleep_until(Instant::now() - Duration::from_millis(1))
                .await
                .unwrap();
            late.sort();
            // Far below the timer wheel's millisecond (loose: CI machines are noisy).
            assert!(late[10] < Duration::from_micros(500), "{late:?}");
        };
        if legacy {
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(body);
        } else {
            monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
                .enable_timer()
                .build()
                .unwrap()
                .block_on(body);
        }
    }

    #[test]
    fn precise_timer_fusion_driver() {
        precise_sleeps(false);
    }

    #[test]
    fn precise_timer_epoll_driver() {
        precise_sleeps(true);
    }
}
