//! Latency estimates per target: a peak-sensitive, time-decayed EWMA for ranking targets, and
//! a small decaying histogram of recent times to first byte for hedging's "after the p95".
//!
//! Time is an input: every update and read takes `now`. Nothing here allocates.

use std::time::{Duration, Instant};

/// Decay time constant of [`PeakEwma`]: a fast result moves the estimate ~63% of the way to
/// itself after this much time has passed, however many results arrived meanwhile.
pub const DECAY: Duration = Duration::from_secs(10);

/// Peak EWMA: a slow result raises the estimate at once; faster results pull it down gradually,
/// weighted by the time since the last update (not by the number of samples, so a busy target
/// and a quiet one forget at the same pace).
///
/// When read, the estimate also decays towards zero with the time since the last result: a
/// target that was slow once and then got no traffic (because it was slow) slowly looks better
/// again until it is tried and re-measured. A target with steady traffic is barely affected.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeakEwma {
    nanos: f64,
    at: Option<Instant>,
}

impl PeakEwma {
    pub fn observe(&mut self, sample: Duration, now: Instant) {
        let s = sample.as_nanos() as f64;
        self.nanos = match self.at {
            None => s,
            Some(_) if s >= self.nanos => s,
            Some(at) => {
                let w = decay(now.saturating_duration_since(at));
                self.nanos * w + s * (1.0 - w)
            }
        };
        self.at = Some(now);
    }

    /// The estimate in nanoseconds as of `now`; `None` before the first result.
    pub fn estimate(&self, now: Instant) -> Option<f64> {
        let at = self.at?;
        Some(self.nanos * decay(now.saturating_duration_since(at)))
    }

    /// The estimate as last observed, without read-time decay (for metrics and headers).
    pub fn last(&self) -> Option<Duration> {
        self.at.map(|_| Duration::from_nanos(self.nanos as u64))
    }
}

/// Buckets of [`Recent`]; bucket `i` holds samples up to `FLOOR × GROWTH^i`.
const BUCKETS: usize = 128;
/// The first bucket's upper bound in microseconds.
const FLOOR_US: f64 = 100.0;
/// Each bucket's bound over the previous one's: quantiles are read within 12.5%.
const GROWTH: f64 = 1.125;
/// When the count reaches this, every bucket is halved: old samples fade, recent ones rule.
const HALVE_AT: u32 = 1024;

/// Recent times to first byte as a log-bucketed histogram (100 µs … ~5 min in 12.5% steps),
/// with counts halved every 1024 samples so it follows the last few hundred requests.
/// Fixed size; recording and reading never allocate.
#[derive(Debug, Clone, Copy)]
pub struct Recent {
    counts: [u16; BUCKETS],
    total: u32,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            counts: [0; BUCKETS],
            total: 0,
        }
    }
}

impl Recent {
    pub fn record(&mut self, sample: Duration) {
        let us = sample.as_secs_f64() * 1e6;
        let i = if us <= FLOOR_US {
            0
        } else {
            ((us / FLOOR_US).ln() / GROWTH.ln()).ceil() as usize
        };
        let slot = &mut self.counts[i.min(BUCKETS - 1)];
        *slot = slot.saturating_add(1);
        self.total += 1;
        if self.total >= HALVE_AT {
            self.total = 0;
            for c in &mut self.counts {
                *c /= 2;
                self.total += u32::from(*c);
            }
        }
    }

    /// Samples currently weighing in.
    pub fn samples(&self) -> u32 {
        self.total
    }

    /// The upper bound of the bucket holding quantile `q` (in (0, 1]); `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * f64::from(self.total)).ceil().max(1.0) as u32;
        let mut seen = 0u32;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u32::from(c);
            if seen >= rank {
                let us = FLOOR_US * GROWTH.powi(i as i32);
                return Some(Duration::from_nanos((us * 1e3) as u64));
            }
        }
        None
    }
}

fn decay(elapsed: Duration) -> f64 {
    (-elapsed.as_secs_f64() / DECAY.as_secs_f64()).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn peak_rises_at_once_and_falls_gradually() {
        let t0 = Instant::now();
        let mut e = PeakEwma::default();
        assert_eq!(e.estimate(t0), None);
        e.observe(MS(100), t0);
        e.observe(MS(900), t0 + MS(10));
        assert_eq!(e.last(), Some(MS(900)));
        // One fast result 10 ms later barely moves it.
        e.observe(MS(100), t0 + MS(20));
        let est = e.last().unwrap();
        assert!(est > MS(895), "{est:?}");
        // Fast results over ~one decay period bring it most of the way down.
        for i in 1..=100u64 {
            e.observe(MS(100), t0 + MS(20) + MS(100) * i as u32);
        }
        let est = e.last().unwrap();
        assert!(est > MS(100) && est < MS(420), "{est:?}");
    }

    #[test]
    fn recent_quantiles_are_within_a_bucket() {
        let mut r = Recent::default();
        assert_eq!(r.quantile(0.95), None);
        // 95 fast samples at 2 ms and 5 slow ones at 80 ms: p50 is ~2 ms, p99 ~80 ms.
        for i in 0..100 {
            r.record(if i % 20 == 0 { MS(80) } else { MS(2) });
        }
        let p = |q| r.quantile(q).unwrap().as_secs_f64() * 1e3;
        assert!((2.0..2.25).contains(&p(0.5)), "{}", p(0.5));
        assert!((2.0..2.25).contains(&p(0.95)), "{}", p(0.95));
        assert!((80.0..90.0).contains(&p(0.99)), "{}", p(0.99));
        assert!(r.quantile(1.0).unwrap() >= MS(80));
        assert_eq!(r.samples(), 100);
    }

    #[test]
    fn recent_follows_a_change_and_clamps_its_range() {
        let mut r = Recent::default();
        for _ in 0..2000 {
            r.record(MS(100));
        }
        for _ in 0..2000 {
            r.record(MS(10));
        }
        // Halving keeps the count bounded; after 2000 fast samples the old ones are a few %.
        assert!(r.samples() < HALVE_AT);
        let p90 = r.quantile(0.9).unwrap();
        assert!(p90 < MS(12), "{p90:?}");
        r.record(Duration::ZERO);
        r.record(Duration::from_secs(100_000));
        assert!(r.quantile(1.0).unwrap() > Duration::from_secs(100));
    }

    #[test]
    fn read_decays_towards_zero_when_idle() {
        let t0 = Instant::now();
        let mut e = PeakEwma::default();
        e.observe(MS(1000), t0);
        let at = |s: u64| e.estimate(t0 + Duration::from_secs(s)).unwrap() / 1e6;
        assert!((at(0) - 1000.0).abs() < 1e-6);
        assert!((at(10) - 367.9).abs() < 1.0, "{}", at(10));
        assert!(at(60) < 3.0);
    }
}
