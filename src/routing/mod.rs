//! Route selection: a model alias and a request's [`Facts`] in, an ordered [`Plan`] of targets
//! out; and the per-target health that shapes it (in-flight counts, latency estimates, circuit
//! breakers, credential benches, upstream rate-limit cooldowns).
//!
//! A [`Router`] is plain per-shard state, owned and mutated by one shard; shards never share it,
//! so each keeps its own round-robin position, latency view and breakers. It does no I/O and
//! reads no clock and no random source: time (`now: Instant`) and randomness (`rand: u64`) are
//! arguments, so every decision is reproducible in a test. Planning allocates nothing.
//!
//! The contract with the pipeline:
//! 1. `plan` once per alias (again for a fallback alias);
//! 2. for each target tried: `admits` (health may have changed since the plan was made), then
//!    `started`, then exactly one `finished` with the outcome;
//! 3. an empty plan's [`Plan::shortfall`] says whether to answer 429 (busy, rate-limited) or 503
//!    (down), or to move on to the fallbacks;
//! 4. for a hedged alias, `hedge_delay` says how long the first attempt runs alone and
//!    `may_hedge` whether this request may send a second one (a per-shard share of requests);
//!    the attempt that loses the race ends as [`Outcome::Cancelled`].
//!
//! Active health checks (run by the shard, reported through `probed`) take a target out of every
//! plan while its probes fail, whatever its breaker says.
//!
//! What counts against a target: connect failures, 5xx, protocol errors and timeouts trip its
//! breaker; a 401/403 benches its credentials for [`AUTH_BENCH`] without touching its siblings; a 429 cools it down for the
//! provider's `Retry-After` (default [`RATE_LIMIT_COOLDOWN`]) without counting as a failure.
//! Errors that are the client's (bad request, context window, content policy, disconnect) say
//! nothing about the target.

pub mod backoff;
pub mod breaker;
pub mod latency;
pub mod plan;
pub mod price;
pub mod rules;
mod strategy;

use std::time::{Duration, Instant};

pub use backoff::{backoff, retry_delay};
pub use breaker::BreakerState;
pub use plan::{MAX_TARGETS, Plan, Shortfall, TargetSet};
pub use price::{Price, cost};
pub use rules::Facts;

use crate::config::{BreakerPolicy, HedgePolicy, Model, Snapshot, Target};
use crate::error::Kind;
use breaker::{Admit, Circuit};
use latency::{PeakEwma, Recent};

/// How long a target whose credentials were rejected (401/403) is left out.
pub const AUTH_BENCH: Duration = Duration::from_secs(300);
/// How long a rate-limited target cools down when the provider gave no `Retry-After`.
pub const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(1);
/// The longest cooldown a provider's `Retry-After` can impose on a target.
pub const MAX_RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(300);
/// Times to first byte a target needs before a hedge waits for its quantile rather than the
/// policy's fixed delay.
pub const HEDGE_MIN_SAMPLES: u32 = 20;
/// Hedges an alias may save up while traffic is quiet, so a burst after a pause can hedge.
const HEDGE_BURST: f64 = 10.0;

/// How one attempt against a target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response was relayed: times from sending the request to its first byte and to its end.
    Success { ttfb: Duration, total: Duration },
    /// The attempt failed with this error class; `retry_after` as the provider sent it.
    Failure {
        kind: Kind,
        retry_after: Option<Duration>,
    },
    /// A hedged attempt lost the race and was cancelled after `waited` without a first byte:
    /// no verdict on the target, but its time to first byte is at least that.
    Cancelled { waited: Duration },
}

/// One target's health, for metrics and the admin API.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TargetStatus {
    pub breaker: BreakerState,
    /// Times the breaker has tripped since the router was built.
    pub trips: u64,
    pub in_flight: u32,
    /// Remaining time its credentials are benched after a 401/403.
    pub benched_for: Option<Duration>,
    /// Remaining cooldown after an upstream 429.
    pub cooling_for: Option<Duration>,
    /// Peak-EWMA time to first byte and total time, as last updated.
    pub ttfb: Option<Duration>,
    pub total: Option<Duration>,
    /// Marked down by failed health-check probes.
    pub probed_down: bool,
}

/// Per-shard routing state for every alias of one snapshot.
#[derive(Debug, Clone)]
pub struct Router {
    models: Vec<AliasState>,
}

#[derive(Debug, Clone)]
struct AliasState {
    breaker: BreakerPolicy,
    hedge: Option<HedgePolicy>,
    /// Hedges this shard may still send for the alias: each request earns `max_share` of one.
    hedge_tokens: f64,
    targets: Vec<TargetState>,
    /// Recent times to first byte per target, for a hedge's quantile delay; empty unless the
    /// alias hedges (so other aliases' target state stays small).
    recent: Vec<Recent>,
}

/// A target's in-flight count, shared by the routers of every generation that has the target
/// (by alias and target name): a request that started under one generation ends under it,
/// and the next generation's router still sees it in flight.
#[derive(Debug, Clone, Default)]
struct InFlight(std::rc::Rc<std::cell::Cell<u32>>);

impl InFlight {
    fn get(&self) -> u32 {
        self.0.get()
    }

    fn set(&self, n: u32) {
        self.0.set(n)
    }
}

/// Cloning shares the in-flight count (see [`InFlight`]): that is what a carried-over target
/// wants, so a fresh state comes from `Default`, never from cloning another target's.
#[derive(Debug, Clone, Default)]
struct TargetState {
    /// Smooth weighted round-robin's "current weight".
    swrr: i64,
    in_flight: InFlight,
    ttfb: PeakEwma,
    total: PeakEwma,
    circuit: Circuit,
    benched_until: Option<Instant>,
    cooling_until: Option<Instant>,
    /// Active health checks: consecutive failed probes, and whether they marked it down.
    probe_failures: u32,
    probed_down: bool,
}

/// Whether a target can take a request now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Availability {
    Ready,
    Saturated,
    Cooling(Duration),
    /// Breaker open or credentials benched; back after this long, if known.
    Down(Option<Duration>),
}

/// What a failure of this kind says about the target that returned it.
enum Blame {
    /// The target is unhealthy: counts towards its breaker.
    Target,
    /// The target's credentials were rejected.
    Credentials,
    /// The provider asked the gateway to slow down.
    RateLimited,
    /// The request's or client's doing: nothing about the target.
    Nobody,
}

fn blame(kind: Kind) -> Blame {
    match kind {
        Kind::UpstreamConnect
        | Kind::UpstreamServer
        | Kind::UpstreamProtocol
        | Kind::UpstreamTimeout => Blame::Target,
        Kind::UpstreamAuth => Blame::Credentials,
        Kind::UpstreamRateLimited => Blame::RateLimited,
        Kind::BadRequest
        | Kind::Unauthorized
        | Kind::Forbidden
        | Kind::ModelNotFound
        | Kind::NotFound
        | Kind::MethodNotAllowed
        | Kind::RequestTimeout
        | Kind::PayloadTooLarge
        | Kind::HeaderTooLarge
        | Kind::UpstreamBadRequest
        | Kind::UpstreamContextWindow
        | Kind::UpstreamContentPolicy
        | Kind::NoHealthyTarget
        // An answer too large is the request's doing (its max_tokens), not the target's.
        | Kind::UpstreamTooLarge
        | Kind::Overloaded
        | Kind::RateLimited
        | Kind::BudgetExceeded
        | Kind::PriceUnknown
        | Kind::GuardrailBlocked
        | Kind::ClientDisconnected => Blame::Nobody,
    }
}

// === impl Router ===

impl Router {
    pub fn new(snapshot: &Snapshot) -> Router {
        Router::from_models(&snapshot.models)
    }

    /// The router for a new generation's `models`: an alias and target that `old_models` had
    /// (by alias name and target name) keeps its state (breaker, latency estimates, cooldown,
    /// probe verdict) and shares its in-flight count; the rest start fresh.
    pub fn carried(&self, old_models: &[Model], models: &[Model]) -> Router {
        let mut next = Router::from_models(models);
        let old_index: std::collections::HashMap<&str, usize> = old_models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.alias.as_str(), i))
            .collect();
        for (m, state) in models.iter().zip(&mut next.models) {
            let Some((old_m, old)) = old_index
                .get(m.alias.as_str())
                .and_then(|&i| Some((old_models.get(i)?, self.models.get(i)?)))
            else {
                continue;
            };
            state.hedge_tokens = old.hedge_tokens;
            for (t, ts) in m.targets.iter().zip(&mut state.targets) {
                if let Some(j) = old_m.targets.iter().position(|o| o.name == t.name) {
                    *ts = old.targets[j].clone();
                }
            }
            if !state.recent.is_empty() && !old.recent.is_empty() {
                for (t, r) in m.targets.iter().zip(&mut state.recent) {
                    if let Some(j) = old_m.targets.iter().position(|o| o.name == t.name) {
                        *r = old.recent[j];
                    }
                }
            }
        }
        next
    }

    /// A router for these aliases (indices as in the slice), all targets fresh and healthy.
    pub fn from_models(models: &[Model]) -> Router {
        Router {
            models: models
                .iter()
                .map(|m| AliasState {
                    breaker: m.breaker,
                    hedge: m.hedge,
                    hedge_tokens: 1.0,
                    targets: (0..m.targets.len())
                        .map(|_| TargetState::default())
                        .collect(),
                    recent: match m.hedge {
                        Some(_) => vec![Recent::default(); m.targets.len()],
                        None => Vec::new(),
                    },
                })
                .collect(),
        }
    }

    /// Fills `plan` with the targets of alias `model_idx` to try, best first.
    ///
    /// The first matching rule picks the eligible targets; of those, any that is down (breaker
    /// open, credentials benched), cooling down after a 429, or at `max_concurrent` is left out
    /// (a half-open breaker is in while it has probe slots). The strategy picks the first; the
    /// rest follow in the strategy's order of preference, so a retry goes elsewhere.
    pub fn plan(
        &mut self,
        model_idx: usize,
        model: &Model,
        facts: &Facts<'_>,
        now: Instant,
        rand: u64,
        plan: &mut Plan,
    ) {
        plan.clear();
        let Some(alias) = self.models.get_mut(model_idx) else {
            debug_assert!(false, "no alias {model_idx} in this router");
            return;
        };
        debug_assert_eq!(alias.targets.len(), model.targets.len());
        let (allowed, rule) = rules::eligible(&model.rules, facts, model.targets.len());
        plan.set_rule(rule);
        let mut ready = TargetSet::EMPTY;
        for i in allowed.iter() {
            let (Some(t), Some(s)) = (model.targets.get(i), alias.targets.get_mut(i)) else {
                continue;
            };
            match s.availability(t, &alias.breaker, now) {
                Availability::Ready => ready.insert(i),
                Availability::Saturated => plan.exclude_saturated(i),
                Availability::Cooling(d) => plan.exclude_cooling(i, d),
                Availability::Down(d) => plan.exclude_down(i, d),
            }
        }
        strategy::order(model, &mut alias.targets, ready, facts, now, rand, plan);
    }

    /// Whether the target can take a request now; check before each attempt of a plan, since
    /// earlier attempts (of this or other requests) may have changed its health.
    pub fn admits(
        &mut self,
        model_idx: usize,
        model: &Model,
        target_idx: usize,
        now: Instant,
    ) -> bool {
        let Some(alias) = self.models.get_mut(model_idx) else {
            return false;
        };
        match (
            model.targets.get(target_idx),
            alias.targets.get_mut(target_idx),
        ) {
            (Some(t), Some(s)) => s.availability(t, &alias.breaker, now) == Availability::Ready,
            _ => false,
        }
    }

    /// A request is being sent to the target: counts it in flight (and as a probe when the
    /// breaker is half-open).
    pub fn started(&mut self, model_idx: usize, target_idx: usize, now: Instant) {
        if let Some(s) = self.state_mut(model_idx, target_idx) {
            s.in_flight.set(s.in_flight.get() + 1);
            s.circuit.on_start(now);
        }
    }

    /// Forgets every in-flight count. Only for a shard with no request in flight after a
    /// request panicked between `started` and `finished`: its count would otherwise stay.
    pub fn clear_in_flight(&mut self) {
        for s in self.models.iter_mut().flat_map(|m| m.targets.iter_mut()) {
            s.in_flight.set(0);
        }
    }

    /// The attempt started with [`Router::started`] has ended. Returns whether this outcome
    /// tripped the target's breaker (for the trips metric).
    pub fn finished(
        &mut self,
        model_idx: usize,
        target_idx: usize,
        outcome: Outcome,
        now: Instant,
    ) -> bool {
        let Some(alias) = self.models.get_mut(model_idx) else {
            return false;
        };
        let policy = alias.breaker;
        let Some(s) = alias.targets.get_mut(target_idx) else {
            return false;
        };
        let trips = s.circuit.trips();
        s.in_flight.set(s.in_flight.get().saturating_sub(1));
        match outcome {
            Outcome::Success { ttfb, total } => {
                s.ttfb.observe(ttfb, now);
                s.total.observe(total, now);
                if let Some(r) = alias.recent.get_mut(target_idx) {
                    r.record(ttfb);
                }
                s.circuit.on_success(now);
            }
            Outcome::Cancelled { waited } => {
                // A lower bound only: it may raise the estimate, never lower it.
                if s.ttfb
                    .estimate(now)
                    .is_some_and(|e| e < waited.as_nanos() as f64)
                {
                    s.ttfb.observe(waited, now);
                }
                if let Some(r) = alias.recent.get_mut(target_idx) {
                    r.record(waited);
                }
                s.circuit.on_neutral(now);
            }
            Outcome::Failure { kind, retry_after } => match blame(kind) {
                Blame::Target => s.circuit.on_failure(now, &policy),
                Blame::Credentials => {
                    s.benched_until = Some(now + AUTH_BENCH);
                    s.circuit.on_neutral(now);
                }
                Blame::RateLimited => {
                    let wait = retry_after
                        .unwrap_or(RATE_LIMIT_COOLDOWN)
                        .min(MAX_RATE_LIMIT_COOLDOWN);
                    let until = now + wait;
                    s.cooling_until = Some(s.cooling_until.map_or(until, |u| u.max(until)));
                    s.circuit.on_neutral(now);
                }
                Blame::Nobody => s.circuit.on_neutral(now),
            },
        }
        s.circuit.trips() > trips
    }

    /// A health-check probe of the target ended: `Some(true)` good, `Some(false)` failed,
    /// `None` neither (the provider rate-limited the probe). `failures` consecutive failed
    /// probes mark the target down; one good probe marks it up. Returns whether that changed.
    pub fn probed(
        &mut self,
        model_idx: usize,
        target_idx: usize,
        healthy: Option<bool>,
        failures: u32,
    ) -> bool {
        let Some(s) = self.state_mut(model_idx, target_idx) else {
            return false;
        };
        let was = s.probed_down;
        match healthy {
            Some(true) => {
                s.probe_failures = 0;
                s.probed_down = false;
            }
            Some(false) => {
                s.probe_failures = s.probe_failures.saturating_add(1);
                s.probed_down |= s.probe_failures >= failures;
            }
            None => {}
        }
        s.probed_down != was
    }

    /// How long the first attempt on `target_idx` runs alone before a hedge is sent: the
    /// policy's quantile of the target's recent times to first byte once it has
    /// [`HEDGE_MIN_SAMPLES`], else the fixed `after`. `None` when the alias does not hedge.
    pub fn hedge_delay(&self, model_idx: usize, target_idx: usize) -> Option<Duration> {
        let alias = self.models.get(model_idx)?;
        let policy = alias.hedge?;
        let recent = alias.recent.get(target_idx)?;
        Some(match policy.quantile {
            Some(q) if recent.samples() >= HEDGE_MIN_SAMPLES => {
                recent.quantile(q).unwrap_or(policy.after)
            }
            _ => policy.after,
        })
    }

    /// Counts a request of a hedged alias; call once per request, before `may_hedge`.
    pub fn earn_hedge(&mut self, model_idx: usize) {
        if let Some(a) = self.models.get_mut(model_idx)
            && let Some(p) = a.hedge
        {
            a.hedge_tokens = (a.hedge_tokens + p.max_share).min(HEDGE_BURST);
        }
    }

    /// Whether a hedge may be sent now (spending one from the alias's share if so).
    pub fn may_hedge(&mut self, model_idx: usize) -> bool {
        match self.models.get_mut(model_idx) {
            Some(a) if a.hedge.is_some() && a.hedge_tokens >= 1.0 => {
                a.hedge_tokens -= 1.0;
                true
            }
            _ => false,
        }
    }

    pub fn status(
        &self,
        model_idx: usize,
        target_idx: usize,
        now: Instant,
    ) -> Option<TargetStatus> {
        let s = self.state(model_idx, target_idx)?;
        let left = |until: Option<Instant>| until.filter(|&u| u > now).map(|u| u - now);
        Some(TargetStatus {
            breaker: s.circuit.state(now),
            trips: s.circuit.trips(),
            in_flight: s.in_flight.get(),
            benched_for: left(s.benched_until),
            cooling_for: left(s.cooling_until),
            ttfb: s.ttfb.last(),
            total: s.total.last(),
            probed_down: s.probed_down,
        })
    }

    fn state(&self, model_idx: usize, target_idx: usize) -> Option<&TargetState> {
        self.models.get(model_idx)?.targets.get(target_idx)
    }

    fn state_mut(&mut self, model_idx: usize, target_idx: usize) -> Option<&mut TargetState> {
        self.models.get_mut(model_idx)?.targets.get_mut(target_idx)
    }
}

// === impl TargetState ===

impl TargetState {
    fn availability(&mut self, t: &Target, policy: &BreakerPolicy, now: Instant) -> Availability {
        if self.probed_down {
            return Availability::Down(None);
        }
        if let Some(until) = self.benched_until {
            if now < until {
                return Availability::Down(Some(until - now));
            }
            self.benched_until = None;
        }
        match self.circuit.admits(now, policy) {
            Admit::Yes => {}
            Admit::OpenFor(d) => return Availability::Down(Some(d)),
            Admit::ProbesBusy => return Availability::Down(None),
        }
        if let Some(until) = self.cooling_until {
            if now < until {
                return Availability::Cooling(until - now);
            }
            self.cooling_until = None;
        }
        if t.max_concurrent
            .is_some_and(|max| self.in_flight.get() >= max)
        {
            return Availability::Saturated;
        }
        Availability::Ready
    }
}

#[cfg(test)]
mod tests;
