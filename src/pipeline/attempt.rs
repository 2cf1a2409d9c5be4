//! The route and attempt stages. `route` asks the shard's router for a plan (the alias's
//! targets in the order to try them), tries them with capped, jittered backoff within the
//! alias's retry budget, and moves to fallback aliases when every target failed — all before the
//! first byte reaches the client, since a relay that started answering never returns an error.
//!
//! A hedged alias may run two attempts at once ([`super::hedge`]); each attempt, raced or not,
//! is reported once through [`record`] to the router, the metrics and the access log.
//!
//! `prepare` turns the client's request into one target's upstream request. When the client
//! and the provider speak the same protocol the upstream gets the client's own bytes with the
//! model spliced in; otherwise the body goes through the canonical form ([`translate`]).

use super::Env;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::decode::Decoded;
use super::relay::{self, Passage};
use super::{Ctx, Outcome, Scratch, Tried};
use crate::config::Model;
use crate::error::{GatewayError, Kind};
use crate::http::conn::{Body, Conn};
use crate::providers::Endpoint;
use crate::providers::adapter::{Head, Splice};
use crate::providers::canonical::Stamp;
use crate::providers::translate;
use crate::routing::{self, Facts, Plan, Shortfall};

/// Fallback aliases followed at most, so a cycle in the config cannot loop.
const MAX_FALLBACK_DEPTH: usize = 4;
/// Time a retry needs at least before the request's deadline to be worth starting.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(1);

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The request as every attempt sees it.
pub struct Call<'a> {
    pub endpoint: Endpoint,
    pub body_at: &'a Body,
    pub decoded: &'a Decoded,
    pub facts: Facts<'a>,
}

/// Routes the request through `ctx.model`'s targets and fallbacks until one answers.
pub async fn route(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
) -> Result<Outcome, GatewayError> {
    let snap = env.snapshot;
    let first = ctx.model as usize;
    // The whole request — retries, backoff and fallbacks included — ends by then.
    ctx.deadline = Some(ctx.start + snap.models[first].request_timeout);
    let mut alias = first;
    let mut next_fallback = 0;
    for _ in 0..=MAX_FALLBACK_DEPTH {
        let e = match try_alias(env, conn, scratch, ctx, call, alias).await {
            Ok(o) => return Ok(o),
            Err(e) => e,
        };
        if !e.kind.is_upstream() && e.kind != Kind::NoHealthyTarget {
            return Err(e);
        }
        if ctx.time_left().is_some_and(|d| d < MIN_ATTEMPT_TIME) {
            return Err(e);
        }
        // A class-specific fallback of the alias that failed, else the requested alias's list;
        // a hop the key may not use is skipped (and named in the access log), never taken.
        let model = &snap.models[alias];
        let key = ctx.key;
        let may_use = |to: usize| key.is_none_or(|k| env.keys.may_use(k, &snap.models[to].alias));
        let to = match model.fallback_for(e.kind) {
            Some(to) if may_use(to) => to,
            Some(to) => {
                ctx.skip_not_allowed(to);
                return Err(e);
            }
            None if e.kind.retryable() || e.kind == Kind::NoHealthyTarget => loop {
                match snap.models[first].fallbacks.get(next_fallback) {
                    Some(&to) => {
                        next_fallback += 1;
                        if may_use(to) {
                            break to;
                        }
                        ctx.skip_not_allowed(to);
                    }
                    None => return Err(e),
                }
            },
            None => return Err(e),
        };
        let (from_label, to_label) = (env.alias_label(alias as u32), env.alias_label(to as u32));
        env.shard
            .metrics
            .borrow_mut()
            .fallback(from_label, to_label);
        log::debug!(
            "request {}: alias {:?} failed ({}); falling back to {:?}",
            String::from_utf8_lossy(ctx.id()),
            model.alias,
            e.kind.label(),
            snap.models[to].alias
        );
        alias = to;
    }
    Err(GatewayError::new(
        Kind::NoHealthyTarget,
        format!(
            "fallbacks of `{}` went deeper than {MAX_FALLBACK_DEPTH}",
            snap.models[first].alias
        ),
    ))
}

/// Tries one alias's plan: up to `retry.attempts` targets, with backoff between them.
async fn try_alias(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    alias: usize,
) -> Result<Outcome, GatewayError> {
    let model = &env.snapshot.models[alias];
    let mut plan = Plan::default();
    env.router.borrow_mut().plan(
        alias,
        model,
        &call.facts,
        Instant::now(),
        env.shard.rand(),
        &mut plan,
    );
    let mut last: Option<GatewayError> = None;
    let mut tries = 0u32;
    let hedging = model.hedge.is_some() && call.endpoint != Endpoint::CountTokens;
    if hedging {
        env.router.borrow_mut().earn_hedge(alias);
    }
    // Each target once in plan order, then around again while the retry budget lasts: a retry
    // prefers another target, and repeats one only when no other is left.
    let order = plan.targets();
    let mut idle_round = true;
    for (i, &t) in order.iter().cycle().enumerate() {
        let t = t as usize;
        if tries >= model.retry.attempts || order.is_empty() {
            break;
        }
        if i > 0 && i % order.len() == 0 {
            if idle_round {
                break; // a whole round admitted nothing
            }
            idle_round = true;
        }
        if tries > 0 {
            let retry_after = last
                .as_ref()
                .and_then(|e| e.retry_after_s)
                .map(Duration::from_secs);
            let r = &model.retry;
            let wait = routing::retry_delay(
                tries,
                r.backoff,
                r.max_backoff,
                env.shard.rand(),
                retry_after,
            );
            if wait > r.max_backoff {
                // The provider asked for longer than this alias waits: try the next one now.
                log::debug!("retry-after {wait:?} exceeds the backoff cap; not waiting");
            } else if !wait.is_zero() {
                monoio::time::sleep(wait).await;
            }
            if ctx.time_left().is_some_and(|d| d < MIN_ATTEMPT_TIME) {
                log::debug!(
                    "request {}: no time left for another attempt",
                    String::from_utf8_lossy(ctx.id())
                );
                break;
            }
        }
        if !env
            .router
            .borrow_mut()
            .admits(alias, model, t, Instant::now())
        {
            continue;
        }
        let target = &model.targets[t];
        let provider = &env.snapshot.providers[target.provider];
        if let Err(e) = provider.protocol.adapter_for(&target.model).ready(provider) {
            // Credentials still on their way (a token being fetched) are no fault of the
            // target's: it is passed over for this request, not benched.
            last = Some(e);
            continue;
        }
        tries += 1;
        idle_round = false;
        // A hedge goes to the plan's next other target, within the retry budget.
        let partner = order[i % order.len() + 1..]
            .iter()
            .chain(&order[..i % order.len()])
            .map(|&p| p as usize)
            .find(|&p| p != t)
            .filter(|_| hedging && tries < model.retry.attempts);
        let result = match partner {
            Some(p) => {
                // Boxed: a race holds two exchanges, and inline it would double the state of
                // every request, hedged or not.
                let race = super::hedge::race(env, conn, scratch, ctx, call, alias, t, p);
                let raced = Box::pin(race).await;
                tries += u32::from(raced.hedged);
                raced.result
            }
            None => {
                let at = Attempt::start(env, ctx, alias, t);
                let result = attempt(env, conn, scratch, ctx, call, &at).await;
                record(env, ctx, &at, Ended::Done(&result));
                result
            }
        };
        match result {
            Ok(o) => return Ok(o),
            // Nothing reached the client: another target may still serve it.
            Err(e) if e.kind.retryable() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| shortfall(model, &plan)))
}

/// An attempt's limits, cut to what is left of the request's deadline.
fn within(mut t: crate::config::Timeouts, left: Option<Duration>) -> crate::config::Timeouts {
    if let Some(left) = left {
        t.connect = t.connect.min(left);
        t.first_byte = t.first_byte.min(left);
        t.total = t.total.min(left);
    }
    t
}

/// An attempt under way: what [`record`] needs to report it.
pub struct Attempt {
    alias: usize,
    target: usize,
    slot: usize,
    began: Instant,
    retry: bool,
}

impl Attempt {
    /// Counts the attempt in flight on the router and in the request's attempt list.
    pub fn start(env: &Env<'_>, ctx: &mut Ctx, alias: usize, target: usize) -> Attempt {
        let now = Instant::now();
        env.router.borrow_mut().started(alias, target, now);
        ctx.upstream_since.get_or_insert(now);
        let retry = ctx.attempts > 0;
        Attempt {
            alias,
            target,
            slot: ctx.begin_attempt(),
            began: now,
            retry,
        }
    }

    /// A hedge the router already counted in flight when it went out at `began`: listed like
    /// any attempt, but not as a retry.
    pub fn launched(ctx: &mut Ctx, alias: usize, target: usize, began: Instant) -> Attempt {
        Attempt {
            alias,
            target,
            slot: ctx.begin_attempt(),
            began,
            retry: false,
        }
    }

    /// Makes this attempt's target the one the response names.
    pub fn serve(&self, env: &Env<'_>, ctx: &mut Ctx) {
        let target = &env.snapshot.models[self.alias].targets[self.target];
        ctx.served_model = self.alias as u32;
        ctx.target = self.target as u32;
        ctx.provider = target.provider as u32;
    }
}

/// How an attempt ended.
pub enum Ended<'r> {
    /// It ran to its end: relayed (`Ok`, perhaps with a mid-stream error) or failed.
    Done(&'r Result<Outcome, GatewayError>),
    /// It failed before anything reached the client.
    Failed(&'r GatewayError),
    /// It lost a hedge race and was cancelled.
    Cancelled,
}

/// Reports a finished attempt to the router (health, latency), the metrics and the access log.
pub fn record(env: &Env<'_>, ctx: &mut Ctx, at: &Attempt, ended: Ended<'_>) {
    let now = Instant::now();
    let (outcome, result) = match ended {
        Ended::Cancelled => (
            routing::Outcome::Cancelled {
                waited: now - at.began,
            },
            Some("cancelled"),
        ),
        Ended::Done(Ok(Outcome {
            error: None,
            ttfb_us,
            ..
        })) => (
            routing::Outcome::Success {
                ttfb: Duration::from_micros(ttfb_us.unwrap_or(0)),
                total: now - at.began,
            },
            None,
        ),
        Ended::Done(Ok(Outcome { error: Some(e), .. }))
        | Ended::Done(Err(e))
        | Ended::Failed(e) => (
            routing::Outcome::Failure {
                kind: e.kind,
                retry_after: e.retry_after_s.map(Duration::from_secs),
            },
            Some(e.kind.label()),
        ),
    };
    let tripped = env
        .router
        .borrow_mut()
        .finished(at.alias, at.target, outcome, now);
    env.shard.metrics.borrow_mut().attempt(
        env.alias_label(at.alias as u32),
        env.target_label(at.alias, at.target),
        result.unwrap_or("ok"),
        at.retry,
        tripped,
    );
    ctx.tried(
        at.slot,
        Tried {
            model: at.alias as u32,
            target: at.target as u16,
            result,
            us: (now - at.began).as_micros() as u64,
        },
    );
}

/// The error when a plan had nothing to try.
fn shortfall(model: &Model, plan: &Plan) -> GatewayError {
    let secs = plan.ready_in().map(|d| d.as_secs_f64().ceil() as u64);
    match plan.shortfall() {
        Some(Shortfall::Saturated) => GatewayError::new(
            Kind::UpstreamRateLimited,
            format!("every target of `{}` is at its max_concurrent", model.alias),
        )
        .retry_after(Some(1)),
        Some(Shortfall::RateLimited) => GatewayError::new(
            Kind::UpstreamRateLimited,
            format!(
                "every target of `{}` is rate-limited by its provider",
                model.alias
            ),
        )
        .retry_after(secs),
        _ => GatewayError::new(
            Kind::NoHealthyTarget,
            format!(
                "no healthy target for `{}`: every breaker is open",
                model.alias
            ),
        )
        .retry_after(secs),
    }
}

/// Sends the request to one target and relays the answer.
async fn attempt(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    at: &Attempt,
) -> Result<Outcome, GatewayError> {
    let snap = env.snapshot;
    let target = &snap.models[at.alias].targets[at.target];
    at.serve(env, ctx);
    let provider = &snap.providers[target.provider];
    let adapter = provider.protocol.adapter_for(&target.model);
    if call.endpoint == Endpoint::CountTokens && !adapter.counts_tokens() {
        // A target that cannot count tokens gets the gateway's estimate.
        return relay::estimate(snap, conn, ctx, call.body_at).await;
    }
    let (leg, dropped) = prepare(
        env,
        conn.body(call.body_at),
        ctx,
        call,
        at.alias,
        at.target,
        scratch,
    )?;
    ctx.dropped = dropped;
    relay::proxy(env, conn, scratch, ctx, leg).await
}

/// Builds target `target_idx`'s upstream request into `scratch.upstream` (using its other
/// buffers as working space), for a network provider. Returns the leg and the request fields
/// a translation dropped (for `ctx.dropped`, once this leg is the one that serves).
pub fn prepare<'s>(
    env: &'s Env<'s>,
    body: &[u8],
    ctx: &Ctx,
    call: &Call<'_>,
    alias: usize,
    target_idx: usize,
    scratch: &mut Scratch,
) -> Result<(relay::Leg<'s>, String), GatewayError> {
    let (endpoint, decoded) = (call.endpoint, call.decoded);
    let snap = env.snapshot;
    let model = &snap.models[alias];
    let target = &model.targets[target_idx];
    let provider = &snap.providers[target.provider];
    let api_key = target.api_key(provider);
    let adapter = provider.protocol.adapter_for(&target.model);
    adapter.ready(provider)?;
    let same = adapter.wire() == Some(ctx.wire);
    let embed = !same && endpoint == Endpoint::Embeddings;
    if !same && !endpoint.is_chat() && !embed {
        return Err(GatewayError::new(
            Kind::BadRequest,
            format!(
                "provider {:?} speaks {}, which has no {} endpoint",
                provider.name,
                adapter.name(),
                endpoint.path()
            ),
        ));
    }
    let origin = &snap.origins[provider.origin.expect("network providers have an origin")];
    scratch.upstream.clear();
    let mut dropped = String::new();
    let passage = if same {
        let splice = Splice {
            provider,
            api_key,
            origin,
            endpoint,
            body,
            decoded,
            model: &target.model,
        };
        let injected_usage = adapter.splice(&mut scratch.upstream, &splice);
        Passage::Same { injected_usage }
    } else if embed {
        // Another protocol's embeddings: the request through the canonical form, like a chat.
        scratch.body.clear();
        scratch.body.extend_from_slice(body);
        scratch.events.clear();
        let base64 = translate::embed_request(
            adapter,
            &mut scratch.body,
            &target.model,
            &mut scratch.events,
        )?;
        let head = Head {
            provider,
            api_key,
            origin,
            endpoint,
            model: &target.model,
            body: &scratch.events,
            stream: false,
            now: unix_now(),
        };
        adapter.write_head(&mut scratch.upstream, &head);
        scratch.upstream.extend_from_slice(&scratch.events);
        Passage::Embed { base64 }
    } else {
        // The body is parsed in place: work on a copy, encode into `events`, then frame it.
        scratch.body.clear();
        scratch.body.extend_from_slice(body);
        scratch.events.clear();
        let stamp = Stamp {
            model: &target.model,
            created: unix_now(),
            default_max_tokens: provider.default_max_tokens,
            id: ctx.id_str(),
        };
        let t = translate::request_as(
            ctx.wire,
            adapter,
            &mut scratch.body,
            &stamp,
            &mut scratch.events,
            Some(ctx.stream),
        )?;
        // Translation re-encodes (escapes, wraps content in blocks): it may grow a body, within
        // reason. Past twice the body limit something is wrong; nothing that large goes out.
        let bound = 2 * env.shard.limits().max_body_bytes + (64 << 10);
        if scratch.events.len() > bound {
            return Err(GatewayError::new(
                Kind::PayloadTooLarge,
                format!("the translated request is larger than {bound} bytes"),
            ));
        }
        if !t.dropped.is_empty() {
            dropped = t.dropped.join(", ");
            log::debug!(
                "request {}: {} cannot carry {dropped}; dropped",
                String::from_utf8_lossy(ctx.id()),
                adapter.name(),
            );
        }
        let head = Head {
            provider,
            api_key,
            origin,
            endpoint: Endpoint::Chat,
            model: &target.model,
            body: &scratch.events,
            stream: t.stream,
            now: unix_now(),
        };
        adapter.write_head(&mut scratch.upstream, &head);
        scratch.upstream.extend_from_slice(&scratch.events);
        Passage::Translate {
            include_usage: t.include_usage,
        }
    };
    let leg = relay::Leg {
        provider,
        origin,
        timeouts: within(model.timeouts_for(provider), ctx.time_left()),
        model: &target.model,
        passage,
    };
    Ok((leg, dropped))
}
