//! The limits stages: `charge` admits a request against every limit that applies to it (the
//! key's and its team's, the key's on this alias, the alias's own), reserving its tokens and
//! worst-case cost; `settle` reconciles the reservation with what the request used and prices
//! the answer. Both work on the shard's leases only (`crate::limits`).

use super::{Ctx, Env, Outcome, RouteFacts};
use crate::auth::Principal;
use crate::error::{GatewayError, Kind};
use crate::http::response::{Rate, Rates};
use crate::limits::{Actual, Charges, Demand, Limit, Meter};
use crate::providers::Usage;
use crate::routing::price;

/// Admits the request against its limits, all or nothing, or refuses it with 429 (or 403 for
/// a budget on an unpriced target with `on_unknown_price: reject`).
pub(super) fn charge(
    env: &Env<'_>,
    ctx: &mut Ctx,
    key: Principal,
    facts: &RouteFacts,
    charges: &mut Charges,
) -> Result<(), GatewayError> {
    ctx.prompt_estimate = facts.prompt_tokens;
    if env.shard.ledger.is_some() {
        ctx.end_user = facts.user().map(Box::from);
    }
    let Some(model) = env.snapshot.models.get(ctx.model as usize) else {
        return Ok(());
    };
    let entry = env.keys.entry(key);
    let own = env
        .snapshot
        .alias_limits
        .get(ctx.model as usize)
        .map_or(&[][..], Vec::as_slice);
    let u = &env.snapshot.end_user_limits;
    let per_user = u.rpm_limit.is_some()
        || u.tpm_limit.is_some()
        || u.max_parallel_requests.is_some()
        || u.max_budget.is_some();
    let user_limits = match (per_user, facts.user()) {
        (true, Some(user)) => Some(env.shard.user_limits(user)),
        _ => None,
    };
    if own.is_empty() && user_limits.is_none() && !entry.is_some_and(|e| e.has_limits()) {
        return Ok(());
    }
    let key_limits = entry.map_or(&[][..], |e| e.limits());
    let on_alias = entry.into_iter().flat_map(|e| e.alias_limits(&model.alias));
    // Gathered once: the stages below walk them four times.
    let mut all: [Option<&Limit>; crate::limits::MAX_CHARGES] = [None; crate::limits::MAX_CHARGES];
    let users = user_limits.as_deref().unwrap_or(&[]);
    let every = key_limits
        .iter()
        .chain(on_alias)
        .chain(own.iter())
        .chain(users.iter());
    for (slot, l) in all.iter_mut().zip(every) {
        *slot = Some(l);
    }
    let limits = all.iter().map_while(|l| *l);
    let input = facts.prompt_tokens;
    let now = ctx.wall_ms();
    let mut leases = env.shard.leases.borrow_mut();
    let output = match facts.max_tokens {
        Some(n) => n,
        // No max_tokens: the alias's bound, but never more than a token limit has left, so a
        // small limit still admits requests (each settles to what it really used).
        None => limits
            .clone()
            .fold(model.output_bound, |out, l| match l.meter {
                Meter::Tokens(side) if side != crate::limits::Side::Input => {
                    let left = leases.state(l, now).remaining;
                    let left = match side {
                        crate::limits::Side::Total => left.saturating_sub(input),
                        _ => left,
                    };
                    out.min(left.max(1))
                }
                _ => out,
            }),
    };
    let mut spend = 0.0;
    if limits.clone().any(|l| l.meter == Meter::Spend) {
        // The worst case over the alias's targets: any of them may serve it.
        for t in &model.targets {
            match &t.price {
                Some(p) => spend = f64::max(spend, price::estimate(p, input, output)),
                None if env.snapshot.server.reject_unknown_price => {
                    return Err(GatewayError::new(
                        Kind::PriceUnknown,
                        format!(
                            "a budget applies to this key, and the price of target {} of `{}` is unknown; \
                             set its `price:` (or server.on_unknown_price: allow)",
                            t.name, model.alias
                        ),
                    ));
                }
                None => {}
            }
        }
    }
    let demand = Demand {
        input,
        output,
        spend: crate::limits::micros(spend),
    };
    let admitted = leases.admit(limits.clone(), &demand, now, charges);
    let mut rates = Rates {
        anthropic: ctx.wire.ingress().anthropic_rate_headers(),
        now_ms: now,
        requests: None,
        tokens: None,
    };
    for l in limits {
        let slot = match l.meter {
            Meter::Requests => &mut rates.requests,
            Meter::Tokens(_) => &mut rates.tokens,
            Meter::Concurrent | Meter::Spend => continue,
        };
        let s = leases.state(l, now);
        let r = Rate {
            limit: s.limit,
            remaining: s.remaining,
            reset_ms: s.reset_ms,
        };
        // The tightest: the smallest share left.
        if slot.is_none_or(|o| {
            (r.remaining as u128) * (o.limit as u128) < (o.remaining as u128) * (r.limit as u128)
        }) {
            *slot = Some(r);
        }
    }
    ctx.rates = Some(rates);
    admitted.map_err(|r| {
        ctx.share_short = env.snapshot.cluster.is_some()
            && !r
                .limit
                .slot
                .pool_down
                .load(std::sync::atomic::Ordering::Relaxed);
        refused(&r.limit, r.retry_after_s, now)
    })
}

/// How long a request refused for want of this replica's share waits for control to top it
/// up (control looks every 5 ms, and one round trip to Redis follows), and how many times:
/// a limit the whole cluster has spent answers 429 after 60 ms.
const SHARE_WAIT: std::time::Duration = std::time::Duration::from_millis(15);
const SHARE_TRIES: u32 = 4;

/// Charges a request refused for want of this replica's share again after control's next
/// top-up, a few times at most (cluster mode only). Boxed: the request's future carries no
/// timer for the rare request that needs one.
pub(super) fn after_top_up<'a>(
    env: &'a Env<'a>,
    ctx: &'a mut Ctx,
    key: Principal,
    facts: &'a RouteFacts,
    charges: &'a mut Charges,
) -> super::Boxed<'a, Result<(), GatewayError>> {
    Box::pin(async move {
        let mut tries = 1;
        loop {
            ctx.share_short = false;
            monoio::time::sleep(SHARE_WAIT).await;
            match charge(env, ctx, key, facts, charges) {
                Err(_) if ctx.share_short && tries < SHARE_TRIES => tries += 1,
                charged => {
                    ctx.share_short = false;
                    return charged;
                }
            }
        }
    })
}

fn refused(l: &Limit, retry_after_s: u64, now_ms: i64) -> GatewayError {
    let (kind, what) = match l.meter {
        Meter::Spend => (Kind::BudgetExceeded, "budget"),
        _ => (Kind::RateLimited, "rate limit"),
    };
    let reset = match l.slot.window.bounds(now_ms) {
        Some((_, end)) => format!("; it resets at {}", crate::observe::time::iso8601(end)),
        None => String::new(),
    };
    let ms = l
        .slot
        .window
        .left_ms(now_ms)
        .map_or(1000, |ms| ms.max(1) as u64);
    if l.meter == Meter::Spend && l.slot.pool_down.load(std::sync::atomic::Ordering::Relaxed) {
        return pool_down(l);
    }
    let mut e = GatewayError::new(
        kind,
        format!(
            "{} {} {:?} refused the request: {}{reset}",
            l.scope.name(),
            what,
            l.who,
            l.describe()
        ),
    )
    .retry_after(Some(retry_after_s));
    e.retry_after_ms = Some(if l.meter == Meter::Concurrent {
        1000
    } else {
        ms
    });
    e
}

/// A budget refused because the cluster's shared pool is out of reach and
/// `cluster.on_pool_unavailable` is `reject`: worth retrying in a second.
fn pool_down(l: &Limit) -> GatewayError {
    let mut e = GatewayError::new(
        Kind::BudgetExceeded,
        format!(
            "{} budget {:?} cannot be checked: the cluster's shared budget pool is unreachable \
             (cluster.on_pool_unavailable: reject); retry shortly",
            l.scope.name(),
            l.who
        ),
    )
    .retry_after(Some(1));
    e.retry_after_ms = Some(1000);
    e
}

/// What the request used (its usage, or an estimate for a stream cut short), and its cost at
/// the serving target's price. Settles the limits it was charged.
pub(super) fn settle(
    env: &Env<'_>,
    ctx: &mut Ctx,
    outcome: &Outcome,
    charges: &Charges,
) -> (Option<Usage>, bool) {
    let (usage, estimated) = match (outcome.usage, ctx.stream && outcome.relayed_events > 0) {
        (Some(u), _) => (Some(u), false),
        // A stream that ended without its usage: what was relayed, about a token an event.
        (None, true) => (
            Some(Usage {
                input: ctx.prompt_estimate,
                output: outcome.relayed_events,
                ..Usage::default()
            }),
            true,
        ),
        (None, false) => (None, false),
    };
    if ctx.cost.is_none()
        && let Some(u) = &usage
        && let Some(p) = served_price(env, ctx)
    {
        ctx.cost = Some(price::cost(&p, u));
    }
    if !charges.is_empty() {
        let actual = Actual {
            input: usage.map_or(0, |u| u.input),
            output: usage.map_or(0, |u| u.output),
            spend: crate::limits::micros(ctx.cost.unwrap_or(0.0)),
        };
        env.shard.leases.borrow_mut().settle(charges, &actual);
    }
    (usage, estimated)
}

/// The price of the target that served the request.
pub(super) fn served_price(env: &Env<'_>, ctx: &Ctx) -> Option<price::Price> {
    env.snapshot
        .models
        .get(ctx.served_model as usize)?
        .targets
        .get(ctx.target as usize)?
        .price
}
