//! Router behaviour end to end over its pure API: time is `t0 + Duration`, randomness a counter.

use std::time::{Duration, Instant};

use super::*;
use crate::config::{Rule, Strategy, When};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn target(name: &str, weight: u32) -> Target {
    let mut t = Target::new(0, "p", name);
    t.name = name.to_owned();
    t.weight = weight;
    t
}

fn alias(strategy: Strategy, targets: &[(&str, u32)]) -> Model {
    let mut m = Model::new("a", targets.iter().map(|&(n, w)| target(n, w)).collect());
    m.strategy = strategy;
    m
}

/// A cheap, well-spread sequence of `rand` values.
fn rands() -> impl Iterator<Item = u64> {
    (1u64..).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
}

fn firsts(r: &mut Router, m: &Model, now: Instant, n: usize) -> Vec<usize> {
    let mut plan = Plan::default();
    let mut counts = vec![0; m.targets.len()];
    for rand in rands().take(n) {
        r.plan(0, m, &Facts::default(), now, rand, &mut plan);
        counts[plan.first().unwrap()] += 1;
    }
    counts
}

fn names(m: &Model, plan: &Plan) -> Vec<String> {
    plan.targets()
        .iter()
        .map(|&i| m.targets[i as usize].name.clone())
        .collect()
}

fn ok(ttfb: u64) -> Outcome {
    Outcome::Success {
        ttfb: MS(ttfb),
        total: MS(ttfb * 3),
    }
}

fn fail(kind: Kind) -> Outcome {
    Outcome::Failure {
        kind,
        retry_after: None,
    }
}

/// One full attempt against target `i`.
fn attempt(r: &mut Router, i: usize, outcome: Outcome, now: Instant) {
    r.started(0, i, now);
    r.finished(0, i, outcome, now);
}

#[test]
fn weighted_split_is_exact_over_many_plans() {
    let m = alias(Strategy::Weighted, &[("a", 3), ("b", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let counts = firsts(&mut r, &m, Instant::now(), 10_000);
    assert_eq!(counts, [7500, 2500]);
}

#[test]
fn weighted_interleaves_smoothly() {
    let t0 = Instant::now();
    let mut plan = Plan::default();
    let mut seq = |m: &Model, n: usize| {
        let mut r = Router::from_models(std::slice::from_ref(m));
        (0..n)
            .map(|_| {
                r.plan(0, m, &Facts::default(), t0, 0, &mut plan);
                m.targets[plan.first().unwrap()].name.clone()
            })
            .collect::<Vec<_>>()
            .concat()
    };
    // nginx's canonical example: weights 5, 1, 1.
    let m = alias(Strategy::Weighted, &[("a", 5), ("b", 1), ("c", 1)]);
    assert_eq!(seq(&m, 14), "aabacaaaabacaa");
    let m = alias(Strategy::Weighted, &[("a", 3), ("b", 1)]);
    assert_eq!(seq(&m, 8), "aabaaaba");
    let m = alias(Strategy::Weighted, &[("a", 1), ("b", 1), ("c", 1)]);
    assert_eq!(seq(&m, 6), "abcabc");
}

#[test]
fn weighted_rest_of_plan_is_by_descending_weight() {
    let m = alias(
        Strategy::Weighted,
        &[("a", 1), ("b", 5), ("c", 2), ("d", 2)],
    );
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), Instant::now(), 0, &mut plan);
    assert_eq!(names(&m, &plan), ["b", "c", "d", "a"]);
    r.plan(0, &m, &Facts::default(), Instant::now(), 0, &mut plan);
    assert_eq!(names(&m, &plan), ["c", "b", "d", "a"]);
}

#[test]
fn least_latency_moves_traffic_away_from_a_slow_target() {
    let t0 = Instant::now();
    let m = alias(
        Strategy::LeastLatency,
        &[("a", 1), ("b", 1), ("slow", 1), ("c", 1)],
    );
    let mut r = Router::from_models(std::slice::from_ref(&m));
    // Unmeasured, every target gets traffic.
    let before = firsts(&mut r, &m, t0, 4000);
    assert!(before.iter().all(|&c| c > 700), "{before:?}");
    for i in 0..4 {
        let ttfb = if i == 2 { 900 } else { 100 + 10 * i as u64 };
        attempt(&mut r, i, ok(ttfb), t0);
    }
    let t1 = t0 + MS(10);
    let after = firsts(&mut r, &m, t1, 4000);
    assert_eq!(after[2], 0, "{after:?}");
    // Among the fast ones, the fastest wins most of its pairs.
    assert!(after[0] > after[1] && after[1] > after[3], "{after:?}");
    // The slow one is ranked last, so retries avoid it too.
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), t1, 5, &mut plan);
    assert_eq!(plan.targets().last(), Some(&2));
}

#[test]
fn least_latency_rechecks_an_idle_slow_target_and_counts_in_flight() {
    let t0 = Instant::now();
    let m = alias(Strategy::LeastLatency, &[("fast", 1), ("slow", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    attempt(&mut r, 0, ok(100), t0);
    attempt(&mut r, 1, ok(2000), t0);
    // The fast target keeps being measured; the slow one is only remembered.
    let mut now = t0;
    let mut plan = Plan::default();
    let mut slow_picked_at = None;
    for step in 1..=120u64 {
        now = t0 + Duration::from_secs(step);
        r.plan(0, &m, &Facts::default(), now, step, &mut plan);
        if plan.first() == Some(1) {
            slow_picked_at = Some(step);
            break;
        }
        attempt(&mut r, 0, ok(100), now);
    }
    let at = slow_picked_at.expect("the slow target is tried again eventually");
    assert!((20..=60).contains(&at), "retried after {at}s");
    // In-flight load counts: with the fast target busy, the idle one wins.
    let m2 = alias(Strategy::LeastLatency, &[("x", 1), ("y", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m2));
    attempt(&mut r, 0, ok(100), now);
    attempt(&mut r, 1, ok(150), now);
    for _ in 0..3 {
        r.started(0, 0, now);
    }
    let c = firsts(&mut r, &m2, now, 100);
    assert_eq!(c, [0, 100]);
}

#[test]
fn least_busy_prefers_fewest_in_flight_per_weight() {
    let t0 = Instant::now();
    let m = alias(Strategy::LeastBusy, &[("a", 1), ("b", 1), ("c", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    // All idle: ties are spread by `rand`.
    let c = firsts(&mut r, &m, t0, 3000);
    assert!(c.iter().all(|&n| n > 800), "{c:?}");
    r.started(0, 0, t0);
    r.started(0, 1, t0);
    r.started(0, 1, t0);
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["c", "a", "b"]);
    // Weight scales capacity: 2 in flight on weight 4 is less busy than 1 on weight 1.
    let m = alias(Strategy::LeastBusy, &[("big", 4), ("small", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    r.started(0, 0, t0);
    r.started(0, 0, t0);
    r.started(0, 1, t0);
    assert_eq!(firsts(&mut r, &m, t0, 50), [50, 0]);
    r.finished(0, 1, ok(10), t0);
    r.started(0, 0, t0);
    r.started(0, 0, t0);
    r.started(0, 0, t0);
    // big: 6 in flight / 4 = (7/4) vs small: 0 → (1/1).
    assert_eq!(firsts(&mut r, &m, t0, 50), [0, 50]);
}

#[test]
fn cost_picks_the_cheapest_for_the_request() {
    let t0 = Instant::now();
    let mut m = alias(
        Strategy::Cost,
        &[
            ("gpt-4o", 1),
            ("mystery", 1),
            ("gpt-4o-mini", 1),
            ("claude-haiku-4-5", 1),
        ],
    );
    // A target priced by config: cheap prompts, dear output.
    let mut custom = target("custom", 1);
    custom.price = Some(Price::new(0.01, 50.0, 0.01));
    m.targets.push(custom);
    assert!(m.targets[1].price.is_none());
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let mut plan = Plan::default();
    let long_prompt = Facts {
        prompt_tokens: 100_000,
        max_tokens: Some(10),
        ..Facts::default()
    };
    r.plan(0, &m, &long_prompt, t0, 0, &mut plan);
    assert_eq!(
        names(&m, &plan),
        [
            "custom",
            "gpt-4o-mini",
            "claude-haiku-4-5",
            "gpt-4o",
            "mystery"
        ]
    );
    let long_answer = Facts {
        prompt_tokens: 10,
        max_tokens: Some(10_000),
        ..Facts::default()
    };
    r.plan(0, &m, &long_answer, t0, 0, &mut plan);
    assert_eq!(plan.first(), Some(2), "gpt-4o-mini");
    assert_eq!(plan.targets().last(), Some(&1), "unknown price sorts last");
}

#[test]
fn priority_is_config_order_skipping_the_unhealthy() {
    let t0 = Instant::now();
    let m = alias(
        Strategy::Priority,
        &[("primary", 1), ("second", 9), ("third", 1)],
    );
    let mut r = Router::from_models(std::slice::from_ref(&m));
    assert_eq!(firsts(&mut r, &m, t0, 100), [100, 0, 0]);
    for _ in 0..5 {
        attempt(&mut r, 0, fail(Kind::UpstreamServer), t0);
    }
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["second", "third"]);
    assert_eq!(plan.down(), TargetSet::from_bits(0b001));
}

#[test]
fn max_concurrent_leaves_out_a_saturated_target() {
    let t0 = Instant::now();
    let mut m = alias(Strategy::Weighted, &[("a", 3), ("b", 1)]);
    m.targets[0].max_concurrent = Some(2);
    m.targets[1].max_concurrent = Some(1);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    r.started(0, 0, t0);
    r.started(0, 0, t0);
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["b"]);
    assert_eq!(plan.saturated(), TargetSet::from_bits(0b01));
    assert!(!r.admits(0, &m, 0, t0));
    r.started(0, 1, t0);
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert!(plan.is_empty());
    assert_eq!(plan.shortfall(), Some(Shortfall::Saturated));
    r.finished(0, 0, ok(100), t0);
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["a"]);
}

#[test]
fn rules_restrict_the_eligible_targets() {
    let t0 = Instant::now();
    let mut m = alias(
        Strategy::Weighted,
        &[("main", 10), ("haiku", 1), ("long", 1)],
    );
    m.rules = vec![
        Rule {
            when: When {
                tag: Some("batch".into()),
                ..When::default()
            },
            targets: TargetSet::from_bits(0b010),
        },
        Rule {
            when: When {
                min_prompt_tokens: Some(100_000),
                ..When::default()
            },
            targets: TargetSet::from_bits(0b100),
        },
        Rule {
            when: When {
                canary: Some(1000),
                ..When::default()
            },
            targets: TargetSet::from_bits(0b110),
        },
    ];
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let mut plan = Plan::default();
    let batch = Facts {
        tags: b"x,batch",
        prompt_tokens: 200_000,
        ..Facts::default()
    };
    r.plan(0, &m, &batch, t0, 0, &mut plan);
    assert_eq!(
        (names(&m, &plan), plan.rule()),
        (vec!["haiku".into()], Some(0))
    );
    let long = Facts {
        prompt_tokens: 200_000,
        ..Facts::default()
    };
    r.plan(0, &m, &long, t0, 0, &mut plan);
    assert_eq!(
        (names(&m, &plan), plan.rule()),
        (vec!["long".into()], Some(1))
    );
    // The canary sends ~10% of requests to haiku or long, never to main.
    let mut canaried = 0;
    for h in 0..10_000u64 {
        let f = Facts {
            hash: h,
            ..Facts::default()
        };
        r.plan(0, &m, &f, t0, h, &mut plan);
        if plan.rule() == Some(2) {
            canaried += 1;
            assert_ne!(plan.first(), Some(0));
        }
    }
    assert!((900..=1100).contains(&canaried), "{canaried}");
    // A rule whose targets are all down leaves the plan empty (the pipeline falls back).
    for _ in 0..5 {
        attempt(&mut r, 1, fail(Kind::UpstreamConnect), t0);
    }
    r.plan(0, &m, &batch, t0, 0, &mut plan);
    assert!(plan.is_empty());
    assert_eq!(plan.shortfall(), Some(Shortfall::Unavailable));
}

#[test]
fn breaker_trips_on_failures_then_probes_and_closes() {
    let t0 = Instant::now();
    let mut m = alias(Strategy::Weighted, &[("a", 1), ("b", 1)]);
    m.breaker.failures = 3;
    m.breaker.cooldown = Duration::from_secs(30);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    for _ in 0..3 {
        attempt(&mut r, 0, fail(Kind::UpstreamTimeout), t0);
    }
    let s = r.status(0, 0, t0).unwrap();
    assert_eq!((s.breaker, s.trips), (BreakerState::Open, 1));
    assert_eq!(firsts(&mut r, &m, t0 + MS(1), 100), [0, 100]);
    // Only b left: the plan says when a comes back.
    let mut plan = Plan::default();
    r.plan(
        0,
        &m,
        &Facts::default(),
        t0 + Duration::from_secs(10),
        0,
        &mut plan,
    );
    assert_eq!(plan.ready_in(), Some(Duration::from_secs(20)));
    // After the cooldown: half-open, one probe admitted.
    let t1 = t0 + Duration::from_secs(30);
    assert_eq!(r.status(0, 0, t1).unwrap().breaker, BreakerState::HalfOpen);
    r.plan(0, &m, &Facts::default(), t1, 0, &mut plan);
    assert!(plan.targets().contains(&0));
    r.started(0, 0, t1);
    assert!(!r.admits(0, &m, 0, t1), "the probe slot is taken");
    r.plan(0, &m, &Facts::default(), t1, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["b"]);
    r.finished(0, 0, ok(100), t1);
    assert_eq!(r.status(0, 0, t1).unwrap().breaker, BreakerState::Closed);
    assert!(r.admits(0, &m, 0, t1));
}

#[test]
fn breaker_reopens_after_a_failed_probe_and_trips_on_rate() {
    let t0 = Instant::now();
    let mut m = alias(Strategy::Weighted, &[("a", 1)]);
    m.breaker.failures = 3;
    m.breaker.window = 10;
    m.breaker.failure_rate = 0.5;
    let mut r = Router::from_models(std::slice::from_ref(&m));
    // Alternating success/failure never makes 3 in a row, but half of 10 trips on rate.
    for i in 0..10 {
        let o = if i % 2 == 0 {
            ok(50)
        } else {
            fail(Kind::UpstreamServer)
        };
        attempt(&mut r, 0, o, t0);
    }
    assert_eq!(r.status(0, 0, t0).unwrap().breaker, BreakerState::Open);
    let mut plan = Plan::default();
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(plan.shortfall(), Some(Shortfall::Unavailable));
    let t1 = t0 + m.breaker.cooldown;
    attempt(&mut r, 0, fail(Kind::UpstreamServer), t1);
    let s = r.status(0, 0, t1).unwrap();
    assert_eq!((s.breaker, s.trips), (BreakerState::Open, 2));
    assert_eq!(
        r.status(0, 0, t1 + m.breaker.cooldown).unwrap().breaker,
        BreakerState::HalfOpen
    );
}

#[test]
fn a_401_benches_one_target_while_siblings_serve() {
    let t0 = Instant::now();
    let m = alias(Strategy::Weighted, &[("bad-key", 1), ("good", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    attempt(&mut r, 0, fail(Kind::UpstreamAuth), t0);
    let s = r.status(0, 0, t0).unwrap();
    assert_eq!(s.benched_for, Some(AUTH_BENCH));
    assert_eq!((s.breaker, s.trips), (BreakerState::Closed, 0));
    assert_eq!(r.status(0, 1, t0).unwrap().benched_for, None);
    assert_eq!(firsts(&mut r, &m, t0 + MS(1), 100), [0, 100]);
    let mut plan = Plan::default();
    r.plan(
        0,
        &m,
        &Facts::default(),
        t0 + Duration::from_secs(60),
        0,
        &mut plan,
    );
    assert_eq!(names(&m, &plan), ["good"]);
    assert_eq!(plan.down(), TargetSet::from_bits(0b01));
    // Back after the bench.
    let later = t0 + AUTH_BENCH;
    assert_eq!(firsts(&mut r, &m, later, 100), [50, 50]);
}

#[test]
fn a_429_cools_the_target_down_for_retry_after() {
    let t0 = Instant::now();
    let m = alias(Strategy::Weighted, &[("a", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let limited = |s: u64| Outcome::Failure {
        kind: Kind::UpstreamRateLimited,
        retry_after: Some(Duration::from_secs(s)),
    };
    // Many 429s never trip the breaker.
    for _ in 0..20 {
        attempt(&mut r, 0, limited(7), t0);
    }
    let s = r.status(0, 0, t0).unwrap();
    assert_eq!((s.breaker, s.trips), (BreakerState::Closed, 0));
    assert_eq!(s.cooling_for, Some(Duration::from_secs(7)));
    let mut plan = Plan::default();
    r.plan(
        0,
        &m,
        &Facts::default(),
        t0 + Duration::from_secs(2),
        0,
        &mut plan,
    );
    assert_eq!(plan.shortfall(), Some(Shortfall::RateLimited));
    assert_eq!(plan.ready_in(), Some(Duration::from_secs(5)));
    r.plan(
        0,
        &m,
        &Facts::default(),
        t0 + Duration::from_secs(7),
        0,
        &mut plan,
    );
    assert_eq!(plan.targets(), [0]);
    // Without Retry-After: the default cooldown; absurd values are capped.
    attempt(
        &mut r,
        0,
        fail(Kind::UpstreamRateLimited),
        t0 + Duration::from_secs(10),
    );
    let s = r.status(0, 0, t0 + Duration::from_secs(10)).unwrap();
    assert_eq!(s.cooling_for, Some(RATE_LIMIT_COOLDOWN));
    attempt(&mut r, 0, limited(86_400), t0 + Duration::from_secs(20));
    let s = r.status(0, 0, t0 + Duration::from_secs(20)).unwrap();
    assert_eq!(s.cooling_for, Some(MAX_RATE_LIMIT_COOLDOWN));
}

#[test]
fn client_errors_do_not_count_against_targets() {
    let t0 = Instant::now();
    let m = alias(Strategy::Weighted, &[("a", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    for kind in [
        Kind::UpstreamBadRequest,
        Kind::UpstreamContextWindow,
        Kind::UpstreamContentPolicy,
        Kind::BadRequest,
        Kind::ClientDisconnected,
        // An answer past the gateway's bounds follows from the request (its max_tokens).
        Kind::UpstreamTooLarge,
        Kind::Overloaded,
    ] {
        for _ in 0..10 {
            attempt(&mut r, 0, fail(kind), t0);
        }
    }
    let s = r.status(0, 0, t0).unwrap();
    assert_eq!(
        (s.breaker, s.trips, s.in_flight),
        (BreakerState::Closed, 0, 0)
    );
    assert!(r.admits(0, &m, 0, t0));
}

#[test]
fn in_flight_counts_can_be_cleared_after_a_panic() {
    let t0 = Instant::now();
    let m = alias(Strategy::Weighted, &[("a", 1), ("b", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    r.started(0, 0, t0);
    r.started(0, 1, t0);
    r.clear_in_flight();
    assert_eq!(r.status(0, 0, t0).unwrap().in_flight, 0);
    assert_eq!(r.status(0, 1, t0).unwrap().in_flight, 0);
    // A late `finished` for a cleared attempt does not go below zero.
    r.finished(0, 0, fail(Kind::UpstreamServer), t0);
    assert_eq!(r.status(0, 0, t0).unwrap().in_flight, 0);
}

#[test]
fn latency_estimates_follow_results() {
    let t0 = Instant::now();
    let m = alias(Strategy::Weighted, &[("a", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    for i in 0..50 {
        attempt(&mut r, 0, ok(100 + (i % 5) * 20), t0);
    }
    let s = r.status(0, 0, t0).unwrap();
    assert!(s.ttfb.unwrap() >= MS(100) && s.total.unwrap() >= MS(300));
}

#[test]
fn full_plans_hold_every_target_once() {
    let t0 = Instant::now();
    let targets: Vec<(String, u32)> = (0..MAX_TARGETS)
        .map(|i| (format!("t{i}"), 1 + i as u32))
        .collect();
    let refs: Vec<(&str, u32)> = targets.iter().map(|(n, w)| (n.as_str(), *w)).collect();
    for strategy in Strategy::ALL {
        let m = alias(strategy, &refs);
        let mut r = Router::from_models(std::slice::from_ref(&m));
        let mut plan = Plan::default();
        for rand in rands().take(100) {
            r.plan(0, &m, &Facts::default(), t0, rand, &mut plan);
            assert_eq!(plan.len(), MAX_TARGETS);
            let mut seen = TargetSet::EMPTY;
            for &i in plan.targets() {
                seen.insert(i as usize);
            }
            assert_eq!(seen.len(), MAX_TARGETS, "{strategy:?}: every target once");
        }
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::config::Strategy as Route;

    const KINDS: [Kind; 6] = [
        Kind::UpstreamServer,
        Kind::UpstreamTimeout,
        Kind::UpstreamAuth,
        Kind::UpstreamRateLimited,
        Kind::UpstreamBadRequest,
        Kind::ClientDisconnected,
    ];

    proptest! {
        /// Whatever happened before, a plan names each target at most once, only targets that
        /// admit a request, and accounts for every other target as saturated, cooling or down;
        /// in-flight counts follow started/finished exactly.
        #[test]
        fn plans_stay_sound(
            strategy in 0..Route::ALL.len(),
            ops in proptest::collection::vec((0u8..4, 0usize..4, 0u64..3000, any::<u64>()), 1..300),
        ) {
            let mut m = alias(Route::ALL[strategy], &[("a", 1), ("b", 3), ("c", 1), ("d", 2)]);
            m.targets[0].max_concurrent = Some(2);
            m.breaker.failures = 2;
            m.breaker.cooldown = MS(5000);
            let mut r = Router::from_models(std::slice::from_ref(&m));
            let mut in_flight = [0u32; 4];
            let mut now = Instant::now();
            let mut plan = Plan::default();
            for (op, t, dt, rand) in ops {
                now += MS(dt);
                match op {
                    0 => {
                        r.plan(0, &m, &Facts { hash: rand, ..Facts::default() }, now, rand, &mut plan);
                        let mut seen = TargetSet::EMPTY;
                        for &i in plan.targets() {
                            prop_assert!(!seen.contains(i as usize), "duplicate {i}");
                            seen.insert(i as usize);
                            prop_assert!(r.admits(0, &m, i as usize, now));
                        }
                        let accounted = plan.len()
                            + plan.saturated().len()
                            + plan.cooling().len()
                            + plan.down().len();
                        prop_assert_eq!(accounted, 4);
                        prop_assert_eq!(plan.shortfall().is_some(), plan.is_empty());
                    }
                    1 => {
                        if r.admits(0, &m, t, now) {
                            r.started(0, t, now);
                            in_flight[t] += 1;
                        }
                    }
                    _ if in_flight[t] == 0 => {}
                    2 => {
                        r.finished(0, t, ok(1 + rand % 500), now);
                        in_flight[t] -= 1;
                    }
                    _ => {
                        let kind = KINDS[(rand % KINDS.len() as u64) as usize];
                        let retry_after = Some(MS(rand % 4000));
                        r.finished(0, t, Outcome::Failure { kind, retry_after }, now);
                        in_flight[t] -= 1;
                    }
                }
                for (i, &n) in in_flight.iter().enumerate() {
                    prop_assert_eq!(r.status(0, i, now).unwrap().in_flight, n);
                }
                prop_assert!(in_flight[0] <= 2, "max_concurrent honoured");
            }
        }
    }
}

fn hedged(quantile: Option<f64>, max_share: f64) -> Model {
    let mut m = alias(Strategy::Priority, &[("a", 1), ("b", 1)]);
    m.hedge = Some(crate::config::HedgePolicy {
        after: MS(250),
        quantile,
        max_share,
    });
    m
}

#[test]
fn hedge_delay_is_fixed_until_the_target_has_samples_then_its_quantile() {
    let t0 = Instant::now();
    let plain = alias(Strategy::Priority, &[("a", 1), ("b", 1)]);
    let r = Router::from_models(std::slice::from_ref(&plain));
    assert_eq!(r.hedge_delay(0, 0), None, "no policy, no hedge");

    let m = hedged(Some(0.9), 1.0);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    assert_eq!(r.hedge_delay(0, 0), Some(MS(250)));
    // 18 fast and 2 slow: the p90 is the fast bucket once there are enough samples.
    for i in 0..HEDGE_MIN_SAMPLES as u64 {
        assert_eq!(r.hedge_delay(0, 0), Some(MS(250)), "sample {i}");
        attempt(&mut r, 0, ok(if i % 10 == 0 { 900 } else { 20 }), t0);
    }
    let d = r.hedge_delay(0, 0).unwrap();
    assert!(d >= MS(20) && d < MS(23), "{d:?}");
    assert_eq!(r.hedge_delay(0, 1), Some(MS(250)), "per target");

    let fixed = hedged(None, 1.0);
    let mut r = Router::from_models(std::slice::from_ref(&fixed));
    for _ in 0..50 {
        attempt(&mut r, 0, ok(5), t0);
    }
    assert_eq!(r.hedge_delay(0, 0), Some(MS(250)));
}

#[test]
fn hedges_are_limited_to_their_share_of_requests() {
    let m = hedged(None, 0.1);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let mut sent = 0;
    for _ in 0..1000 {
        r.earn_hedge(0);
        if r.may_hedge(0) {
            sent += 1;
        }
    }
    // One saved at start, then one per ten requests.
    assert!((100..=101).contains(&sent), "{sent}");
    // A quiet spell saves up a small burst, no more.
    let mut r = Router::from_models(std::slice::from_ref(&m));
    for _ in 0..10_000 {
        r.earn_hedge(0);
    }
    let burst = (0..100).filter(|_| r.may_hedge(0)).count();
    assert_eq!(burst, 10);
    let plain = alias(Strategy::Priority, &[("a", 1), ("b", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&plain));
    r.earn_hedge(0);
    assert!(!r.may_hedge(0));
}

#[test]
fn a_cancelled_hedge_loser_is_neutral_but_looks_no_faster() {
    let t0 = Instant::now();
    let m = hedged(None, 1.0);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    attempt(&mut r, 0, ok(10), t0);
    r.started(0, 0, t0);
    let tripped = r.finished(0, 0, Outcome::Cancelled { waited: MS(400) }, t0);
    assert!(!tripped);
    let s = r.status(0, 0, t0).unwrap();
    assert_eq!(s.in_flight, 0);
    assert_eq!(s.breaker, BreakerState::Closed);
    assert_eq!(s.ttfb, Some(MS(400)), "raised to the time it waited");
    // A cancel sooner than the estimate leaves it alone.
    r.started(0, 0, t0);
    r.finished(0, 0, Outcome::Cancelled { waited: MS(5) }, t0);
    assert_eq!(r.status(0, 0, t0).unwrap().ttfb, Some(MS(400)));
}

#[test]
fn failed_probes_take_a_target_out_until_one_succeeds() {
    let t0 = Instant::now();
    let m = alias(Strategy::Priority, &[("a", 1), ("b", 1)]);
    let mut r = Router::from_models(std::slice::from_ref(&m));
    let mut plan = Plan::default();
    assert!(!r.probed(0, 0, Some(false), 2), "one failure is not enough");
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["a", "b"]);
    assert!(
        !r.probed(0, 0, None, 2),
        "a rate-limited probe says nothing"
    );
    assert!(r.probed(0, 0, Some(false), 2), "second consecutive failure");
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["b"]);
    assert!(!r.admits(0, &m, 0, t0));
    assert!(r.status(0, 0, t0).unwrap().probed_down);
    // Both down: the plan is empty and says so.
    r.probed(0, 1, Some(false), 1);
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(plan.shortfall(), Some(Shortfall::Unavailable));
    assert!(
        r.probed(0, 0, Some(true), 2),
        "one good probe brings it back"
    );
    r.plan(0, &m, &Facts::default(), t0, 0, &mut plan);
    assert_eq!(names(&m, &plan), ["a"]);
    // The count restarts after a good probe.
    assert!(!r.probed(0, 0, Some(false), 2));
}
