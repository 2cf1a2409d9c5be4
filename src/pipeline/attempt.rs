//! The route and attempt stages. `route` asks the shard's router for a plan (the alias's
//! targets in the order to try them), tries them with capped, jittered backoff within the
//! alias's retry budget, and moves to fallback aliases when every target failed — all before the
//! first byte reaches the client, since a relay that started answering never returns an error.
//!
//! `attempt` turns the client's request into one target's upstream request and hands it to the
//! relay. When the client and the provider speak the same protocol the upstream gets the
//! client's own bytes with the model spliced in; otherwise the body goes through the canonical
//! form ([`translate`]). The built-in mock answers in-process.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::decode::{Decoded, StreamOptions};
use super::relay::{self, Passage};
use super::{Ctx, Outcome, Scratch, Tried};
use crate::config::Model;
use crate::error::{GatewayError, Kind};
use crate::http::conn::{Body, Conn};
use crate::providers::canonical::Stamp;
use crate::providers::translate::{self, Wire};
use crate::providers::{Endpoint, Protocol, anthropic, head, mock, openai};
use crate::routing::{self, Facts, Plan, Shortfall};
use crate::runtime::shard::Shard;

/// Fallback aliases followed at most, so a cycle in the config cannot loop.
const MAX_FALLBACK_DEPTH: usize = 4;

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
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
) -> Result<Outcome, GatewayError> {
    let snap = &shard.snapshot;
    let first = ctx.model as usize;
    let mut alias = first;
    let mut next_fallback = 0;
    for _ in 0..=MAX_FALLBACK_DEPTH {
        let e = match try_alias(shard, conn, scratch, ctx, call, alias).await {
            Ok(o) => return Ok(o),
            Err(e) => e,
        };
        if !e.kind.is_upstream() && e.kind != Kind::NoHealthyTarget {
            return Err(e);
        }
        // A class-specific fallback of the alias that failed, else the requested alias's list.
        let model = &snap.models[alias];
        let to = match model.fallback_for(e.kind) {
            Some(to) => to,
            None if e.kind.retryable() || e.kind == Kind::NoHealthyTarget => {
                match snap.models[first].fallbacks.get(next_fallback) {
                    Some(&to) => {
                        next_fallback += 1;
                        to
                    }
                    None => return Err(e),
                }
            }
            None => return Err(e),
        };
        shard.metrics.borrow_mut().fallback(alias as u32, to as u32);
        log::debug!(
            "request {}: alias {:?} failed ({}); falling back to {:?}",
            String::from_utf8_lossy(ctx.id()),
            model.alias,
            e.kind.code(),
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
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    alias: usize,
) -> Result<Outcome, GatewayError> {
    let model = &shard.snapshot.models[alias];
    let mut plan = Plan::default();
    shard.router.borrow_mut().plan(
        alias,
        model,
        &call.facts,
        Instant::now(),
        shard.rand(),
        &mut plan,
    );
    let mut last: Option<GatewayError> = None;
    let mut tries = 0u32;
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
            let wait =
                routing::retry_delay(tries, r.backoff, r.max_backoff, shard.rand(), retry_after);
            if wait > r.max_backoff {
                // The provider asked for longer than this alias waits: try the next one now.
                log::debug!("retry-after {wait:?} exceeds the backoff cap; not waiting");
            } else if !wait.is_zero() {
                monoio::time::sleep(wait).await;
            }
        }
        if !shard
            .router
            .borrow_mut()
            .admits(alias, model, t, Instant::now())
        {
            continue;
        }
        shard.router.borrow_mut().started(alias, t, Instant::now());
        tries += 1;
        idle_round = false;
        let retry = ctx.attempts > 0;
        ctx.begin_attempt();
        let began = Instant::now();
        let result = attempt(shard, conn, scratch, ctx, call, alias, t).await;
        let error = match &result {
            Ok(o) => o.error.as_ref(),
            Err(e) => Some(e),
        };
        let outcome = match error {
            None => routing::Outcome::Success {
                ttfb: Duration::from_micros(result.as_ref().map_or(0, |o| o.ttfb_us.unwrap_or(0))),
                total: began.elapsed(),
            },
            Some(e) => routing::Outcome::Failure {
                kind: e.kind,
                retry_after: e.retry_after_s.map(Duration::from_secs),
            },
        };
        let kind = error.map(|e| e.kind);
        let tripped = shard
            .router
            .borrow_mut()
            .finished(alias, t, outcome, Instant::now());
        shard
            .metrics
            .borrow_mut()
            .attempt(alias as u32, t as u16, kind, retry, tripped);
        ctx.tried(Tried {
            model: alias as u32,
            target: t as u16,
            error: kind,
            us: began.elapsed().as_micros() as u64,
        });
        match result {
            Ok(o) => return Ok(o),
            // Nothing reached the client: another target may still serve it.
            Err(e) if e.kind.retryable() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| shortfall(model, &plan)))
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
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    alias: usize,
    target_idx: usize,
) -> Result<Outcome, GatewayError> {
    let (endpoint, body_at, decoded) = (call.endpoint, call.body_at, call.decoded);
    let model = &shard.snapshot.models[alias];
    let target = &model.targets[target_idx];
    let snap = &shard.snapshot;
    ctx.served_model = alias as u32;
    ctx.target = target_idx as u32;
    ctx.provider = target.provider as u32;
    let provider = &snap.providers[target.provider];
    let api_key = target.api_key.as_ref().or(provider.api_key.as_ref());
    let upstream = provider.protocol.wire();
    if endpoint == Endpoint::CountTokens && provider.protocol != Protocol::Anthropic {
        // Only Anthropic counts tokens; any other target's answer is the gateway's estimate.
        return relay::estimate(snap, conn, ctx, body_at).await;
    }
    let body = conn.body(body_at);
    if upstream != ctx.wire && !endpoint.is_chat() {
        return Err(GatewayError::new(
            Kind::BadRequest,
            format!(
                "provider {:?} speaks {}, which has no {} endpoint",
                provider.name,
                provider.protocol.name(),
                endpoint.path()
            ),
        ));
    }
    if provider.protocol == Protocol::Mock {
        let include_usage =
            ctx.wire == Wire::Anthropic || decoded.stream_options == StreamOptions::IncludeUsage;
        let id = String::from_utf8_lossy(ctx.id()).into_owned();
        let as_openai = if endpoint == Endpoint::Messages {
            Endpoint::Chat
        } else {
            endpoint
        };
        let reply = mock::respond(
            as_openai,
            ctx.stream,
            include_usage,
            &target.model,
            body.len(),
            &id,
        );
        return relay::local(snap, conn, ctx, reply, &target.model).await;
    }
    let origin = &snap.origins[provider.origin.expect("network providers have an origin")];
    scratch.upstream.clear();
    let passage = if upstream == ctx.wire {
        match upstream {
            Wire::OpenAi => {
                let request = openai::Request {
                    provider,
                    api_key,
                    origin,
                    endpoint,
                    body,
                    decoded,
                    model: &target.model,
                };
                let injected_usage = openai::build(&mut scratch.upstream, &request);
                Passage::Same { injected_usage }
            }
            Wire::Anthropic => {
                anthropic::build(
                    &mut scratch.upstream,
                    provider,
                    api_key,
                    origin,
                    endpoint,
                    body,
                    decoded,
                    &target.model,
                );
                Passage::Same {
                    injected_usage: false,
                }
            }
        }
    } else {
        // The body is parsed in place: work on a copy, encode into `events`, then frame it.
        scratch.body.clear();
        scratch.body.extend_from_slice(body);
        scratch.events.clear();
        let stamp = Stamp {
            model: &target.model,
            created: unix_now(),
            default_max_tokens: provider.default_max_tokens,
        };
        let t = translate::request(
            ctx.wire,
            upstream,
            &mut scratch.body,
            &stamp,
            &mut scratch.events,
        )?;
        if !t.dropped.is_empty() {
            ctx.dropped = t.dropped.join(", ");
            log::debug!(
                "request {}: {} cannot carry {}; dropped",
                String::from_utf8_lossy(ctx.id()),
                provider.protocol.name(),
                ctx.dropped
            );
        }
        let path = match upstream {
            Wire::OpenAi => Endpoint::Chat.path(),
            Wire::Anthropic => Endpoint::Messages.path(),
        };
        head::write(
            &mut scratch.upstream,
            provider,
            api_key,
            origin,
            path,
            &target.model,
            scratch.events.len(),
            t.stream,
        );
        scratch.upstream.extend_from_slice(&scratch.events);
        Passage::Translate {
            include_usage: t.include_usage,
        }
    };
    let leg = relay::Leg {
        provider,
        origin,
        timeouts: model.timeouts_for(provider),
        model: &target.model,
        passage,
    };
    relay::proxy(shard, conn, scratch, ctx, leg).await
}
