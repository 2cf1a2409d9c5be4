//! Retry delays: capped exponential backoff with jitter, and the provider's `Retry-After`.
//!
//! Randomness is an input (`rand`), so a test can pin the jitter; nothing here reads a clock.

use std::time::Duration;

/// The delay before retry number `attempt` (1 for the first retry; 0 gives no delay).
///
/// The ceiling doubles per attempt from `base` and is capped at `max`; the delay is "equal
/// jitter": uniformly in `[ceiling/2, ceiling]`. Half the ceiling is always waited, so retries
/// from many requests that failed together still spread out without any of them hammering the
/// upstream immediately.
pub fn backoff(attempt: u32, base: Duration, max: Duration, rand: u64) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let base = base.as_micros().min(u64::MAX as u128) as u64;
    let max = max.as_micros().min(u64::MAX as u128) as u64;
    let shift = (attempt - 1).min(63);
    let ceiling = base.checked_shl(shift).filter(|c| c >> shift == base);
    let ceiling = ceiling.unwrap_or(u64::MAX).min(max);
    let half = ceiling / 2;
    let spread = ceiling - half;
    let jitter = if spread == 0 { 0 } else { rand % (spread + 1) };
    Duration::from_micros(half + jitter)
}

/// The delay before retry number `attempt`: the backoff, or the provider's `Retry-After` when it
/// asked for longer. The pipeline may prefer [`backoff`] alone when the retry goes to a different
/// target than the one that sent `retry_after`.
pub fn retry_delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    rand: u64,
    retry_after: Option<Duration>,
) -> Duration {
    let b = backoff(attempt, base, max, rand);
    retry_after.map_or(b, |r| r.max(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn grows_then_caps_within_bounds() {
        let (base, max) = (MS(50), MS(2000));
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for attempt in 1..=10u32 {
            let ceiling = (50u64 << (attempt - 1)).min(2000);
            for _ in 0..200 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let d = backoff(attempt, base, max, x);
                assert!(d >= MS(ceiling) / 2 && d <= MS(ceiling), "{attempt}: {d:?}");
            }
        }
        // The extremes of the jitter.
        assert_eq!(backoff(1, base, max, 0), MS(25));
        assert_eq!(backoff(3, base, max, 0), MS(100));
        assert_eq!(backoff(3, base, max, 100_000), MS(200));
        assert_eq!(backoff(30, base, max, 0), MS(1000));
        assert_eq!(backoff(0, base, max, 7), Duration::ZERO);
    }

    #[test]
    fn huge_attempts_and_zero_base_do_not_overflow() {
        assert!(backoff(u32::MAX, MS(50), MS(2000), u64::MAX) <= MS(2000));
        assert_eq!(backoff(5, Duration::ZERO, MS(2000), 99), Duration::ZERO);
        assert!(backoff(64, Duration::MAX, Duration::MAX, 1) > Duration::ZERO);
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let (base, max) = (MS(50), MS(2000));
        assert_eq!(retry_delay(1, base, max, 0, Some(MS(3000))), MS(3000));
        assert_eq!(retry_delay(1, base, max, 0, Some(MS(1))), MS(25));
        assert_eq!(retry_delay(1, base, max, 0, None), MS(25));
    }
}
