//! The five strategies: each picks the first target of a plan from the ready ones and ranks the
//! rest, so a retry goes to the next-best *other* target.
//!
//! | strategy      | first                                   | then, by                       |
//! |---------------|-----------------------------------------|--------------------------------|
//! | weighted      | smooth weighted round-robin (nginx's)   | descending weight              |
//! | least-latency | power of two choices on the score below | ascending score                |
//! | least-busy    | fewest in flight per unit of weight     | ascending in-flight per weight |
//! | cost          | cheapest estimated request              | ascending estimate, unknown last |
//! | priority      | the first in config order               | config order                   |
//!
//! The least-latency score is `peak-EWMA TTFB × (in_flight + 1) / weight`: the expected wait
//! including the queue this shard already put on the target. A target without results counts
//! as the fastest possible (1 ns), so new and recovered targets get traffic and are measured.
//! Ties keep config order, except where `rand` breaks them (least-latency, least-busy) so that
//! equal targets share the load. Everything works on fixed arrays of at most `MAX_TARGETS`.

use std::time::Instant;

use crate::config::{Model, Strategy};

use super::plan::{MAX_TARGETS, Plan, TargetSet};
use super::rules::Facts;
use super::{TargetState, price};

/// Output tokens assumed by the cost strategy when the request sets no `max_tokens`.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1024;

pub(super) fn order(
    model: &Model,
    states: &mut [TargetState],
    ready: TargetSet,
    facts: &Facts<'_>,
    now: Instant,
    rand: u64,
    plan: &mut Plan,
) {
    if ready.len() == 1 {
        // Nothing to choose between (the common single-target alias): no ranking, and
        // round-robin with one member is a no-op.
        plan.extend(ready);
        return;
    }
    let mut idx = [0usize; MAX_TARGETS];
    let mut key = [0f64; MAX_TARGETS];
    let mut n = 0;
    for i in ready.iter() {
        idx[n] = i;
        key[n] = rank(model, &states[i], i, facts, now);
        n += 1;
    }
    if n == 0 {
        return;
    }
    let first = match model.strategy {
        Strategy::Weighted => swrr(model, states, &idx[..n]),
        Strategy::LeastLatency => two_choices(&key[..n], rand),
        Strategy::LeastBusy => lowest_from(&key[..n], (rand % n as u64) as usize),
        Strategy::Cost | Strategy::Priority => lowest_from(&key[..n], 0),
    };
    idx[..n].swap(0, first);
    key[..n].swap(0, first);
    // Insertion sort of the rest: at most 15 entries, stable, no allocation.
    for j in 2..n {
        let mut k = j;
        while k > 1 && key[k - 1] > key[k] {
            key.swap(k - 1, k);
            idx.swap(k - 1, k);
            k -= 1;
        }
    }
    for &i in &idx[..n] {
        plan.push(i);
    }
}

/// The strategy's preference for target `i`, lower is better.
fn rank(model: &Model, s: &TargetState, i: usize, facts: &Facts<'_>, now: Instant) -> f64 {
    let t = &model.targets[i];
    let weight = f64::from(t.weight.max(1));
    match model.strategy {
        Strategy::Weighted => -weight,
        Strategy::LeastLatency => {
            let est = s.ttfb.estimate(now).unwrap_or(0.0).max(1.0);
            est * f64::from(s.in_flight.get() + 1) / weight
        }
        Strategy::LeastBusy => f64::from(s.in_flight.get() + 1) / weight,
        Strategy::Cost => t.price.map_or(f64::INFINITY, |p| {
            let out = facts.max_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS);
            price::estimate(&p, facts.prompt_tokens, out)
        }),
        Strategy::Priority => i as f64,
    }
}

/// nginx's smooth weighted round-robin over the ready targets: each gains its weight, the
/// largest is chosen and pays back the total. Returns a position in `ready`.
fn swrr(model: &Model, states: &mut [TargetState], ready: &[usize]) -> usize {
    let mut total = 0i64;
    let mut best = 0;
    for (pos, &i) in ready.iter().enumerate() {
        let w = i64::from(model.targets[i].weight.max(1));
        states[i].swrr += w;
        total += w;
        if states[i].swrr > states[ready[best]].swrr {
            best = pos;
        }
    }
    states[ready[best]].swrr -= total;
    best
}

/// Power of two choices: two distinct positions drawn from `rand`, the lower key wins (the
/// first drawn on a tie).
fn two_choices(key: &[f64], rand: u64) -> usize {
    let n = key.len() as u64;
    if n == 1 {
        return 0;
    }
    let a = rand % n;
    let b = (a + 1 + (rand >> 32) % (n - 1)) % n;
    let (a, b) = (a as usize, b as usize);
    if key[b] < key[a] { b } else { a }
}

/// The lowest key, scanning from `start` round the ring, the first seen winning ties.
fn lowest_from(key: &[f64], start: usize) -> usize {
    let n = key.len();
    let mut best = start;
    for step in 1..n {
        let p = (start + step) % n;
        if key[p] < key[best] {
            best = p;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_choices_are_distinct_and_cover_every_pair() {
        let key = [5.0, 1.0, 3.0, 4.0];
        let mut won = [0u32; 4];
        for r in 0..10_000u64 {
            let r = r.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            won[two_choices(&key, r)] += 1;
        }
        // The worst never wins against a distinct rival; the best wins every pair it is in.
        assert_eq!(won[0], 0);
        assert!(won[1] > won[2] && won[2] > won[3] && won[3] > 0, "{won:?}");
        assert_eq!(two_choices(&[7.0], 123), 0);
    }

    #[test]
    fn lowest_from_breaks_ties_by_start() {
        let key = [2.0, 1.0, 1.0, 3.0];
        assert_eq!(lowest_from(&key, 0), 1);
        assert_eq!(lowest_from(&key, 2), 2);
        assert_eq!(lowest_from(&key, 3), 1);
    }
}
