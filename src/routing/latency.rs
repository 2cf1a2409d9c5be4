//! Latency estimates per target: a peak-sensitive, time-decayed EWMA for ranking targets.
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
