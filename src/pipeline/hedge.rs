//! Hedged attempts: the first target gets the request alone for the alias's hedge delay; if it
//! has not answered by then, the same request also goes to a second target, and whichever
//! answers first is relayed. The other is cancelled — its future dropped, which closes its
//! upstream connection, so the provider stops working on it.
//!
//! "Answers" means a response the client may get: the head of a stream, or a whole body. A
//! retryable failure of one leg leaves the race to the other; a failure that is not retryable
//! (the request's own fault) ends it. Nothing reaches the client before the race is decided, so
//! a hedge never mixes two upstreams' bytes.
//!
//! Each leg builds its request in its own scratch buffers (the second from the shard's pool);
//! the winner's become the request's, so the relay that follows is the ordinary one.

use super::Env;
use std::pin::pin;
use std::time::Instant;

use super::attempt::{self, Attempt, Call, Ended};
use super::relay::{self, Answer, Leg};
use super::{Ctx, Outcome, Scratch};
use crate::error::GatewayError;
use crate::http::conn::Conn;

/// The result of a possibly hedged attempt.
pub struct Raced {
    pub result: Result<Outcome, GatewayError>,
    /// Whether the second target was sent the request (it counts as an attempt).
    pub hedged: bool,
}

/// How the race ended, before anything was relayed.
enum Finish {
    /// The first leg ended before a hedge went out.
    Alone(Result<Answer, GatewayError>),
    /// Both legs ran and `hedge`'s (or the first's) `result` decided the race: an answer, or a
    /// failure after the other had failed too (or one that was the request's own fault).
    /// `other`: how the other leg had ended; `None` if it is being cancelled.
    Raced {
        hedge: bool,
        result: Result<Answer, GatewayError>,
        other: Option<GatewayError>,
    },
}

/// Tries target `a`, hedged with target `b` after the alias's delay.
#[allow(clippy::too_many_arguments)]
pub async fn race(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    alias: usize,
    a: usize,
    b: usize,
) -> Raced {
    let first = Attempt::start(env, ctx, alias, a);
    let (leg_a, dropped_a) =
        match attempt::prepare(env, conn.body(call.body_at), ctx, call, alias, a, scratch) {
            Ok(p) => p,
            Err(e) => {
                attempt::record(env, ctx, &first, Ended::Failed(&e));
                return Raced {
                    result: Err(e),
                    hedged: false,
                };
            }
        };
    let delay = env
        .router
        .borrow()
        .hedge_delay(alias, a)
        .unwrap_or_default();
    let mut other = env.shard.take_scratch();
    // Set when the hedge goes out: its leg, what its translation dropped, and when.
    let mut hedge_leg: Option<(Leg<'_>, String, Instant)> = None;
    let (wants_stream, body) = (ctx.stream, conn.body(call.body_at));
    let ctx_view: &Ctx = ctx;
    let run = async {
        let mut fa = pin!(relay::exchange(
            env,
            &mut scratch.upstream,
            &mut scratch.body,
            &leg_a,
            wants_stream,
        ));
        monoio::select! {
            r = &mut fa => return Finish::Alone(r),
            _ = monoio::time::sleep(delay) => {}
        }
        let may = {
            let mut router = env.router.borrow_mut();
            let model = &env.snapshot.models[alias];
            router.admits(alias, model, b, Instant::now()) && router.may_hedge(alias)
        };
        if !may {
            return Finish::Alone(fa.await);
        }
        let leg = match attempt::prepare(env, body, ctx_view, call, alias, b, &mut other) {
            Ok((leg, dropped)) => {
                let now = Instant::now();
                env.router.borrow_mut().started(alias, b, now);
                hedge_leg.insert((leg, dropped, now)).0
            }
            Err(e) => {
                log::debug!("hedge to target {b} of alias {alias} not sent: {e}");
                return Finish::Alone(fa.await);
            }
        };
        let mut fb = pin!(relay::exchange(
            env,
            &mut other.upstream,
            &mut other.body,
            &leg,
            wants_stream,
        ));
        // The leg that failed first (`true`: the hedge), while the other still runs.
        let mut failed: Option<(bool, GatewayError)> = None;
        loop {
            let a_live = !matches!(failed, Some((false, _)));
            let b_live = !matches!(failed, Some((true, _)));
            let (hedge, r) = monoio::select! {
                r = &mut fa, if a_live => (false, r),
                r = &mut fb, if b_live => (true, r),
            };
            match r {
                Err(e) if failed.is_none() && e.kind.retryable() => failed = Some((hedge, e)),
                result => {
                    return Finish::Raced {
                        hedge,
                        result,
                        other: failed.map(|(_, e)| e),
                    };
                }
            }
        }
    };
    let finish = relay::unless_client_closes(conn, pin!(run)).await;
    let second = hedge_leg
        .as_ref()
        .map(|&(_, _, at)| Attempt::launched(ctx, alias, b, at));
    let hedged = second.is_some();
    let Some(finish) = finish else {
        let e = relay::gone();
        for at in std::iter::once(&first).chain(&second) {
            attempt::record(env, ctx, at, Ended::Failed(&e));
        }
        env.shard.put_scratch(other);
        return Raced {
            result: Err(e),
            hedged,
        };
    };
    let (hedge, result) = match finish {
        Finish::Alone(result) => (false, result),
        Finish::Raced {
            hedge,
            result,
            other,
        } => {
            let second = second.as_ref().expect("a raced hedge went out");
            let other_at = if hedge { &first } else { second };
            match &other {
                Some(e) => attempt::record(env, ctx, other_at, Ended::Failed(e)),
                None => attempt::record(env, ctx, other_at, Ended::Cancelled),
            }
            let won = hedge && result.is_ok();
            env.shard
                .metrics
                .borrow_mut()
                .hedge(env.target_label(alias, b), won);
            (hedge, result)
        }
    };
    let decider = match &second {
        Some(s) if hedge => s,
        _ => &first,
    };
    let result = match result {
        Err(e) => {
            attempt::record(env, ctx, decider, Ended::Failed(&e));
            Err(e)
        }
        Ok(answer) => {
            decider.serve(env, ctx);
            let leg = match hedge_leg.take() {
                Some((leg, dropped, _)) if hedge => {
                    ctx.dropped = dropped;
                    std::mem::swap(scratch, &mut other);
                    leg
                }
                _ => {
                    ctx.dropped = dropped_a;
                    leg_a
                }
            };
            let r = relay::deliver(env, conn, scratch, ctx, &leg, answer).await;
            attempt::record(env, ctx, decider, Ended::Done(&r));
            r
        }
    };
    env.shard.put_scratch(other);
    Raced { result, hedged }
}
