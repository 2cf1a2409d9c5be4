//! A per-target, per-shard circuit breaker: closed → open → half-open → closed.
//!
//! It trips on `failures` consecutive failures, or when at least `failure_rate` of the last
//! `window` results failed (judged only once `window` results have been seen since the breaker
//! last closed, so three early failures out of four do not trip a window of 20). An open breaker
//! admits nothing until `cooldown` has passed; it is then half-open and admits up to
//! `half_open_probes` requests at a time. A probe success closes it, a probe failure re-opens it
//! for another cooldown.
//!
//! Which results count is the caller's business ([`super::Router::finished`] classifies them);
//! this type only sees successes, failures and neutral results. The state changes lazily: an
//! open breaker whose cooldown has passed becomes half-open the next time it is asked, at the
//! `now` it is asked with.

use std::time::{Duration, Instant};

use crate::config::BreakerPolicy;

/// The breaker's state as reported for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probes: u32 },
}

/// Whether a breaker lets a request through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Open; half-open (and admitting probes) after this long.
    OpenFor(Duration),
    /// Half-open with all its probes in flight.
    ProbesBusy,
}

#[derive(Debug, Clone, Copy)]
pub struct Circuit {
    state: State,
    consecutive: u32,
    /// The last results, newest in bit 0, a set bit for a failure; `seen` of them are valid.
    window: u64,
    seen: u32,
    trips: u64,
}

impl Default for Circuit {
    fn default() -> Self {
        Circuit {
            state: State::Closed,
            consecutive: 0,
            window: 0,
            seen: 0,
            trips: 0,
        }
    }
}

impl Circuit {
    /// The state at `now` (an open breaker past its cooldown reports half-open).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// How many times this breaker has tripped (closed or half-open → open).
    pub fn trips(&self) -> u64 {
        self.trips
    }

    pub fn admits(&mut self, now: Instant, policy: &BreakerPolicy) -> Admit {
        self.wake(now);
        match self.state {
            State::Closed => Admit::Yes,
            State::Open { until } => Admit::OpenFor(until - now),
            State::HalfOpen { probes } if probes < policy.half_open_probes => Admit::Yes,
            State::HalfOpen { .. } => Admit::ProbesBusy,
        }
    }

    /// A request was sent; in half-open state it takes a probe slot.
    pub fn on_start(&mut self, now: Instant) {
        self.wake(now);
        if let State::HalfOpen { probes } = &mut self.state {
            *probes += 1;
        }
    }

    pub fn on_success(&mut self, now: Instant) {
        self.wake(now);
        match self.state {
            State::Closed => {
                self.consecutive = 0;
                self.record(false, u32::MAX);
            }
            // A result that started before the breaker opened says nothing new: the open state
            // was decided by later evidence.
            State::Open { .. } => {}
            State::HalfOpen { .. } => self.close(),
        }
    }

    pub fn on_failure(&mut self, now: Instant, policy: &BreakerPolicy) {
        self.wake(now);
        match self.state {
            State::Closed => {
                self.consecutive += 1;
                self.record(true, policy.window);
                let rate_trip = self.seen >= policy.window
                    && f64::from(self.failures_in_window())
                        >= policy.failure_rate * f64::from(policy.window);
                if self.consecutive >= policy.failures || rate_trip {
                    self.trip(now, policy);
                }
            }
            State::Open { .. } => {}
            State::HalfOpen { .. } => self.trip(now, policy),
        }
    }

    /// A result that says nothing about the target's health (a client error, a disconnect):
    /// only gives back a probe slot.
    pub fn on_neutral(&mut self, now: Instant) {
        self.wake(now);
        if let State::HalfOpen { probes } = &mut self.state {
            *probes = probes.saturating_sub(1);
        }
    }

    fn wake(&mut self, now: Instant) {
        if let State::Open { until } = self.state
            && now >= until
        {
            self.state = State::HalfOpen { probes: 0 };
        }
    }

    fn record(&mut self, failed: bool, window: u32) {
        self.window = (self.window << 1) | u64::from(failed);
        self.seen = self.seen.saturating_add(1).min(window.min(64));
    }

    fn failures_in_window(&self) -> u32 {
        let mask = if self.seen >= 64 {
            u64::MAX
        } else {
            (1u64 << self.seen) - 1
        };
        (self.window & mask).count_ones()
    }

    fn trip(&mut self, now: Instant, policy: &BreakerPolicy) {
        self.state = State::Open {
            until: now + policy.cooldown,
        };
        self.trips += 1;
        self.consecutive = 0;
        self.window = 0;
        self.seen = 0;
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.consecutive = 0;
        self.window = 0;
        self.seen = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            failures: 3,
            failure_rate: 0.5,
            window: 10,
            cooldown: Duration::from_secs(30),
            half_open_probes: 1,
        }
    }

    #[test]
    fn trips_on_consecutive_failures() {
        let (p, t0) = (policy(), Instant::now());
        let mut c = Circuit::default();
        c.on_failure(t0, &p);
        c.on_failure(t0, &p);
        c.on_success(t0);
        c.on_failure(t0, &p);
        c.on_failure(t0, &p);
        assert_eq!(c.state(t0), BreakerState::Closed);
        c.on_failure(t0, &p);
        assert_eq!(c.state(t0), BreakerState::Open);
        assert_eq!(c.trips(), 1);
        assert_eq!(c.admits(t0, &p), Admit::OpenFor(Duration::from_secs(30)));
    }

    #[test]
    fn trips_on_rate_only_with_a_full_window() {
        let (t0, mut p) = (Instant::now(), policy());
        p.failures = 100;
        let mut c = Circuit::default();
        // F S F S F S F S F: 5 failures in 9 results — the window of 10 is not full yet.
        for i in 0..9 {
            if i % 2 == 0 {
                c.on_failure(t0, &p);
            } else {
                c.on_success(t0);
            }
        }
        assert_eq!(c.state(t0), BreakerState::Closed);
        // The window is full at 5 of 10, but only a failure is judged.
        c.on_success(t0);
        assert_eq!(c.state(t0), BreakerState::Closed);
        // The oldest failure falls out and this one comes in: still 5 of 10 ≥ 0.5.
        c.on_failure(t0, &p);
        assert_eq!(c.state(t0), BreakerState::Open);
        assert_eq!(c.trips(), 1);
    }

    #[test]
    fn low_failure_rate_does_not_trip() {
        let (t0, mut p) = (Instant::now(), policy());
        p.failures = 100;
        let mut c = Circuit::default();
        for i in 0..1000 {
            if i % 3 == 0 {
                c.on_failure(t0, &p);
            } else {
                c.on_success(t0);
            }
        }
        assert_eq!(c.state(t0), BreakerState::Closed);
    }

    #[test]
    fn half_open_probe_closes_or_reopens() {
        let (p, t0) = (policy(), Instant::now());
        let mut c = Circuit::default();
        for _ in 0..3 {
            c.on_failure(t0, &p);
        }
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            c.state(later - Duration::from_millis(1)),
            BreakerState::Open
        );
        assert_eq!(c.state(later), BreakerState::HalfOpen);
        assert_eq!(c.admits(later, &p), Admit::Yes);
        c.on_start(later);
        assert_eq!(c.admits(later, &p), Admit::ProbesBusy);
        // A neutral result gives the slot back.
        c.on_neutral(later);
        assert_eq!(c.admits(later, &p), Admit::Yes);
        c.on_start(later);
        c.on_failure(later, &p);
        assert_eq!(c.state(later), BreakerState::Open);
        assert_eq!(c.trips(), 2);
        let again = later + Duration::from_secs(30);
        c.on_start(again);
        c.on_success(again);
        assert_eq!(c.state(again), BreakerState::Closed);
        assert_eq!(c.admits(again, &p), Admit::Yes);
        // Closing forgets the old failures: it takes `failures` new ones to trip again.
        c.on_failure(again, &p);
        c.on_failure(again, &p);
        assert_eq!(c.state(again), BreakerState::Closed);
    }

    #[test]
    fn results_while_open_are_ignored() {
        let (p, t0) = (policy(), Instant::now());
        let mut c = Circuit::default();
        for _ in 0..3 {
            c.on_failure(t0, &p);
        }
        c.on_success(t0 + Duration::from_secs(1));
        c.on_failure(t0 + Duration::from_secs(2), &p);
        assert_eq!(c.state(t0 + Duration::from_secs(29)), BreakerState::Open);
        assert_eq!(c.trips(), 1);
    }

    #[test]
    fn several_probes() {
        let (mut p, t0) = (policy(), Instant::now());
        p.half_open_probes = 2;
        let mut c = Circuit::default();
        for _ in 0..3 {
            c.on_failure(t0, &p);
        }
        let t = t0 + Duration::from_secs(31);
        c.on_start(t);
        assert_eq!(c.admits(t, &p), Admit::Yes);
        c.on_start(t);
        assert_eq!(c.admits(t, &p), Admit::ProbesBusy);
    }
}
