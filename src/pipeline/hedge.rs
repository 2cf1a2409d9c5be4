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

use std::cell::Cell;
use std::pin::pin;
use std::time::Instant;

use super::attempt::{self, Attempt, Call, Ended};
use super::relay::{self, Answer, Leg};
use super::{Ctx, Outcome, Scratch};
use crate::error::GatewayError;
use crate::http::conn::Conn;
use crate::runtime::shard::Shard;

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
    /// One leg answered; `loser` is how the other had ended (`None`: it is cancelled).
    Won {
        hedge_won: bool,
        answer: Answer,
        loser: Option<GatewayError>,
    },
    /// A leg failed and ended the race (the other failed before it, or is cancelled because
    /// this failure was the request's own fault).
    Lost {
        hedge_failed: bool,
        error: GatewayError,
        other: Option<GatewayError>,
    },
}

/// Tries target `a`, hedged with target `b` after the alias's delay.
#[allow(clippy::too_many_arguments)]
pub async fn race(
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    call: &Call<'_>,
    alias: usize,
    a: usize,
    b: usize,
) -> Raced {
    let first = Attempt::start(shard, ctx, alias, a);
    let (leg_a, dropped_a) =
        match attempt::prepare(shard, conn.body(call.body_at), ctx, call, alias, a, scratch) {
            Ok(p) => p,
            Err(e) => {
                attempt::record(shard, ctx, &first, Ended::Failed(&e));
                return Raced {
                    result: Err(e),
                    hedged: false,
                };
            }
        };
    let delay = shard
        .router
        .borrow()
        .hedge_delay(alias, a)
        .unwrap_or_default();
    let mut other = shard.take_scratch();
    // Set when the hedge goes out: when, and its leg with what its translation dropped.
    let launched: Cell<Option<Instant>> = Cell::new(None);
    let mut leg_b: Option<(Leg<'_>, String)> = None;
    let (wants_stream, body) = (ctx.stream, conn.body(call.body_at));
    let ctx_view: &Ctx = ctx;
    let run = async {
        let mut fa = pin!(relay::exchange(
            shard,
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
            let mut router = shard.router.borrow_mut();
            let model = &shard.snapshot.models[alias];
            router.admits(alias, model, b, Instant::now()) && router.may_hedge(alias)
        };
        if !may {
            return Finish::Alone(fa.await);
        }
        match attempt::prepare(shard, body, ctx_view, call, alias, b, &mut other) {
            Ok(p) => leg_b = Some(p),
            Err(e) => {
                log::debug!("hedge to target {b} of alias {alias} not sent: {e}");
                return Finish::Alone(fa.await);
            }
        }
        let now = Instant::now();
        shard.router.borrow_mut().started(alias, b, now);
        launched.set(Some(now));
        let leg = &leg_b.as_ref().expect("prepared above").0;
        let mut fb = pin!(relay::exchange(
            shard,
            &mut other.upstream,
            &mut other.body,
            leg,
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
                Ok(answer) => {
                    return Finish::Won {
                        hedge_won: hedge,
                        answer,
                        loser: failed.map(|(_, e)| e),
                    };
                }
                Err(e) if failed.is_some() || !e.kind.retryable() => {
                    return Finish::Lost {
                        hedge_failed: hedge,
                        error: e,
                        other: failed.map(|(_, e)| e),
                    };
                }
                Err(e) => failed = Some((hedge, e)),
            }
        }
    };
    let finish = relay::unless_client_closes(conn, run).await;
    let second = launched
        .get()
        .map(|at| Attempt::launched(ctx, alias, b, at));
    let hedged = second.is_some();
    let result = match finish {
        None => {
            let e = relay::gone();
            attempt::record(shard, ctx, &first, Ended::Failed(&e));
            if let Some(s) = &second {
                attempt::record(shard, ctx, s, Ended::Failed(&e));
            }
            Err(e)
        }
        Some(Finish::Alone(Err(e))) => {
            attempt::record(shard, ctx, &first, Ended::Failed(&e));
            Err(e)
        }
        Some(Finish::Alone(Ok(answer))) => {
            first.serve(shard, ctx);
            ctx.dropped = dropped_a;
            let r = relay::deliver(shard, conn, scratch, ctx, &leg_a, answer).await;
            attempt::record(shard, ctx, &first, Ended::Done(&r));
            r
        }
        Some(Finish::Lost {
            hedge_failed,
            error,
            other,
        }) => {
            let second = second.expect("a race has two legs");
            let (last, earlier) = if hedge_failed {
                (&second, &first)
            } else {
                (&first, &second)
            };
            match &other {
                Some(e) => attempt::record(shard, ctx, earlier, Ended::Failed(e)),
                None => attempt::record(shard, ctx, earlier, Ended::Cancelled),
            }
            attempt::record(shard, ctx, last, Ended::Failed(&error));
            shard
                .metrics
                .borrow_mut()
                .hedge(alias as u32, b as u16, false);
            Err(error)
        }
        Some(Finish::Won {
            hedge_won,
            answer,
            loser,
        }) => {
            let second = second.expect("a race has two legs");
            let (winner, loser_at) = if hedge_won {
                (&second, &first)
            } else {
                (&first, &second)
            };
            match &loser {
                Some(e) => attempt::record(shard, ctx, loser_at, Ended::Failed(e)),
                None => attempt::record(shard, ctx, loser_at, Ended::Cancelled),
            }
            shard
                .metrics
                .borrow_mut()
                .hedge(alias as u32, b as u16, hedge_won);
            winner.serve(shard, ctx);
            let r = if hedge_won {
                let (leg, dropped) = leg_b.take().expect("the hedge ran");
                ctx.dropped = dropped;
                std::mem::swap(scratch, &mut other);
                relay::deliver(shard, conn, scratch, ctx, &leg, answer).await
            } else {
                ctx.dropped = dropped_a;
                relay::deliver(shard, conn, scratch, ctx, &leg_a, answer).await
            };
            attempt::record(shard, ctx, winner, Ended::Done(&r));
            r
        }
    };
    shard.put_scratch(other);
    Raced { result, hedged }
}
