//! The relay stage: send upstream, then return the answer — whole for JSON, event by event for
//! SSE. Same-protocol answers are forwarded as the upstream's own bytes; the only edit is to
//! drop the usage-only chunk the gateway asked for when the client did not. Cross-protocol
//! answers go through the adapters: bodies whole, streams event by event as they arrive, and
//! upstream errors classified into the client's own error shape.
//!
//! While waiting on the upstream, the client socket is watched (readiness and a peek, never a
//! read), so a client that goes away closes the upstream connection; the watch starts only
//! once a wait has lasted [`WATCH_AFTER`] (a stream's writes notice a gone client sooner).

use super::Env;
use std::future::Future;
use std::pin::{Pin, pin};
use std::time::{Duration, Instant};

use super::{Ctx, Outcome, Scratch};
use crate::config::{Origin, Provider, Snapshot, Timeouts};
use crate::error::{GatewayError, Kind};
use crate::http::chunked;
use crate::http::conn::Conn;
use crate::http::response::{self, Meta};
use crate::http::sse;
use crate::providers::adapter::{Adapter, Framing};
use crate::providers::canonical::Stamp;
use crate::providers::translate::{self, StreamTranslator};
use crate::providers::{Usage, anthropic};

/// How long an upstream wait runs before the client socket is watched. Most waits (a fast
/// answer, a stream's next event) end sooner, and each watch costs the shard an io_uring poll
/// and its cancellation: once per event, that was most of its work at 2,000 streams.
const WATCH_AFTER: Duration = Duration::from_millis(100);

/// Runs `fut` unless the client closes first (`None`). The future is pinned by the caller: taken
/// by value, an async fn's argument is stored twice in its state (the argument, then the pinned
/// local), and this wraps the largest futures of a request.
pub async fn unless_client_closes<F: Future>(
    conn: &Conn,
    mut fut: Pin<&mut F>,
) -> Option<F::Output> {
    monoio::select! {
        out = &mut fut => return Some(out),
        _ = monoio::time::sleep(WATCH_AFTER) => {}
    }
    let mut watching = true;
    loop {
        monoio::select! {
            out = &mut fut => return Some(out),
            closed = conn.closed(), if watching => {
                if closed {
                    return None;
                }
                // A pipelined request: it waits in the socket; stop watching for this future.
                watching = false;
            }
        }
    }
}

pub fn gone() -> GatewayError {
    GatewayError::new(Kind::ClientDisconnected, "client closed the connection")
}

/// How the upstream's answer reaches the client.
#[derive(Debug, Clone, Copy)]
pub enum Passage {
    /// Same protocol: the upstream's bytes as they are. `injected_usage`: the gateway asked for
    /// the usage chunk the client did not, so that chunk is not forwarded.
    Same { injected_usage: bool },
    /// Another protocol: translated into the client's.
    Translate { include_usage: bool },
    /// Another protocol's embeddings, written back as OpenAI's (`base64`: as the client asked).
    Embed { base64: bool },
}

fn stamp<'a>(model: &'a str, default_max_tokens: u64, ctx: &'a Ctx) -> Stamp<'a> {
    Stamp {
        model,
        created: super::attempt::unix_now(),
        default_max_tokens,
        id: ctx.id_str(),
    }
}

/// Extra response headers: `retry-after` passed through, what a translation dropped, and the
/// answer's cost (non-streamed answers only: a stream's is known at its end).
fn extras<'a>(
    ctx: &'a Ctx,
    retry_after: Option<&'a str>,
    cost: Option<&'a str>,
) -> ([(&'static str, &'a [u8]); 3], usize) {
    let mut out: [(&str, &[u8]); 3] = [("", b""); 3];
    let mut n = 0;
    if let Some(c) = cost {
        out[n] = ("x-shardgate-cost", c.as_bytes());
        n += 1;
    }
    if let Some(v) = retry_after {
        out[n] = ("retry-after", v.as_bytes());
        n += 1;
    }
    if !ctx.dropped.is_empty() {
        out[n] = ("x-shardgate-dropped", ctx.dropped.as_bytes());
        n += 1;
    }
    (out, n)
}

/// `Retry-After` in whole seconds (the HTTP-date form is not used by model providers).
fn retry_after_secs(v: Option<&str>) -> Option<u64> {
    let v = v?.trim();
    v.parse::<u64>()
        .ok()
        .or_else(|| v.parse::<f64>().ok().map(|f| f.max(0.0).ceil() as u64))
}

fn meta<'a>(ctx: &'a Ctx, snap: &'a Snapshot, upstream_us: Option<u64>) -> Meta<'a> {
    let total = ctx.elapsed_us();
    let own = total.saturating_sub(upstream_us.unwrap_or(0));
    Meta {
        request_id: ctx.id(),
        keep_alive: ctx.keep_alive,
        timing: Some((own, upstream_us)),
        route: ctx.route(snap),
        rates: ctx.rates.as_ref(),
        cache: ctx.cache.map(crate::cache::Status::header),
        guardrails: super::guardrail::logged(ctx),
    }
}

/// `count_tokens` for a target that cannot count (not Anthropic): a local estimate, marked.
pub async fn estimate(
    snap: &Snapshot,
    conn: &mut Conn,
    ctx: &mut Ctx,
    body_at: &crate::http::conn::Body,
) -> Result<Outcome, GatewayError> {
    let tokens = anthropic::estimate_input_tokens(conn.body(body_at)).ok_or_else(|| {
        GatewayError::new(
            Kind::BadRequest,
            "messages: field required (an array of messages)",
        )
    })?;
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(b"{\"input_tokens\":");
    crate::json::push_u64(&mut body, tokens);
    body.push(b'}');
    response::full(
        &mut conn.wbuf,
        200,
        response::JSON,
        &body,
        &meta(ctx, snap, None),
        &[("x-shardgate-estimated", b"true")],
    );
    conn.flush().await?;
    Ok(Outcome {
        status: 200,
        ..Outcome::default()
    })
}

/// Where an upstream request goes, and how its answer comes back.
#[derive(Clone, Copy)]
pub struct Leg<'a> {
    pub provider: &'a Provider,
    pub origin: &'a Origin,
    /// The provider's timeouts with the alias's overrides.
    pub timeouts: Timeouts,
    /// The target's upstream model (reported when the upstream names none).
    pub model: &'a str,
    pub passage: Passage,
}

/// The upstream's answer, before any of it reaches the client: a head ready to stream from,
/// or a whole body in the exchange's body buffer.
pub struct Answer {
    resp: crate::upstream::Response,
    streaming: bool,
    /// When the request went out, and the time from then to the response head.
    sent: Instant,
    ttfb_us: u64,
    /// When the leg's total timeout runs out.
    deadline: monoio::time::Instant,
}

/// Sends `request` on the leg and waits for its answer: the head of a stream, or a whole body
/// (into `body`). Any answer the client must not get as it is — a server error, a rate limit,
/// rejected credentials, any error across protocols — comes back as the classified error, so
/// the route stage can retry, hedge, cool the target down or bench it. Bounded by the leg's
/// total timeout; does not watch the client (the caller does, once for all legs).
pub async fn exchange(
    env: &Env<'_>,
    request: &mut Vec<u8>,
    body: &mut Vec<u8>,
    leg: &Leg<'_>,
    wants_stream: bool,
) -> Result<Answer, GatewayError> {
    let (provider, origin) = (leg.provider, leg.origin);
    let sent = Instant::now();
    let deadline = monoio::time::Instant::now() + leg.timeouts.total;
    let exchange = async {
        let mut resp = env
            .upstream
            .send(provider, origin, &leg.timeouts, request)
            .await?;
        let ttfb_us = sent.elapsed().as_micros() as u64;
        let status = resp.status;
        let streamed = match provider.protocol.adapter_for(leg.model).framing() {
            Framing::Sse => "text/event-stream",
            Framing::EventStream => "application/vnd.amazon.eventstream",
        };
        let is_stream = resp
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(streamed));
        if wants_stream && is_stream && (200..300).contains(&status) {
            return Ok((resp, ttfb_us, true));
        }
        body.clear();
        let limit = env.snapshot.server.max_response_bytes;
        if let Err(e) = resp.read_to_end(body, limit).await {
            if e.kind() == std::io::ErrorKind::FileTooLarge {
                let what = format!("upstream provider {:?} ({origin}): {e}", provider.name);
                return Err(GatewayError::new(Kind::UpstreamTooLarge, what));
            }
            let what = format!(
                "upstream provider {:?} ({origin}) sent a broken body: {e}",
                provider.name
            );
            return Err(GatewayError::new(Kind::UpstreamProtocol, what));
        }
        Ok((resp, ttfb_us, false))
    };
    let (resp, ttfb_us, streaming) = match monoio::time::timeout_at(deadline, exchange).await {
        Ok(r) => r?,
        Err(_) => {
            let ms = leg.timeouts.total.as_millis();
            return Err(GatewayError::new(
                Kind::UpstreamTimeout,
                format!(
                    "upstream provider {:?} did not finish within {ms} ms",
                    provider.name
                ),
            ));
        }
    };
    let status = resp.status;
    let ok = (200..300).contains(&status);
    // A same-protocol client error passes through as the provider wrote it. Server errors,
    // rate limits, rejected credentials and timeouts are classified instead, as is any error
    // across protocols.
    let same = matches!(leg.passage, Passage::Same { .. });
    let passthrough =
        same && (400..500).contains(&status) && !matches!(status, 401 | 403 | 408 | 429);
    if !(ok || passthrough) {
        let adapter = provider.protocol.adapter_for(leg.model);
        // A 429 without Retry-After: the provider's own reset headers say when.
        let retry_after = retry_after_secs(resp.retry_after.as_deref())
            .or_else(|| adapter.retry_after(&resp.rate_limit, crate::auth::now_ms()));
        env.upstream.release(resp, origin);
        let mut e = adapter.classify(status, body).retry_after(retry_after);
        e.message = format!(
            "upstream provider {:?} ({origin}) returned HTTP {status}: {}",
            provider.name, e.message
        );
        return Err(e);
    }
    Ok(Answer {
        resp,
        streaming,
        sent,
        ttfb_us,
        deadline,
    })
}

/// Gives a whole answer's connection back to its pool (its body is in the exchange's buffer).
pub fn finish(env: &Env<'_>, answer: Answer, origin: &Origin) {
    env.upstream.release(answer.resp, origin);
}

/// Sends the request in `scratch.upstream` and relays the answer, unless the client leaves.
pub async fn proxy(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    leg: Leg<'_>,
) -> Result<Outcome, GatewayError> {
    // One watch over the whole exchange (send, head, and a JSON body): one readiness wait on
    // the client socket per request instead of one per phase.
    let answer = {
        let exchange = pin!(exchange(
            env,
            &mut scratch.upstream,
            &mut scratch.body,
            &leg,
            ctx.stream,
        ));
        unless_client_closes(conn, exchange).await
    };
    let answer = answer.ok_or_else(gone)??;
    deliver(env, conn, scratch, ctx, &leg, answer).await
}

/// Relays an answer from [`exchange`] (whose body, if whole, is in `scratch.body`).
pub async fn deliver(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    leg: &Leg<'_>,
    answer: Answer,
) -> Result<Outcome, GatewayError> {
    let Leg {
        provider,
        origin,
        model,
        passage,
        ..
    } = *leg;
    let adapter = provider.protocol.adapter_for(model);
    let Answer {
        mut resp,
        streaming,
        sent,
        ttfb_us,
        deadline,
    } = answer;
    if streaming {
        let guard = match passage {
            Passage::Embed { .. } => None,
            _ => super::guardrail::for_stream(env, ctx),
        };
        let scan = match (passage, guard) {
            (
                Passage::Same { injected_usage }
                | Passage::Translate {
                    include_usage: injected_usage,
                },
                Some(mut guard),
            ) => {
                // Guarded: decoded, checked, and encoded again for the client.
                let include_usage = match passage {
                    Passage::Same { .. } => !injected_usage,
                    _ => injected_usage,
                };
                let stamp = stamp(model, provider.default_max_tokens, ctx);
                let encoder = guard.wrap(ctx.wire.ingress().stream_encoder(&stamp, include_usage));
                let t = StreamTranslator::decoding(adapter, encoder);
                Scan::Guarded(
                    Box::new(t.bounded(env.snapshot.server.max_event_bytes)),
                    guard,
                )
            }
            (Passage::Same { injected_usage }, None) => Scan::Same {
                adapter,
                injected_usage,
            },
            (Passage::Translate { .. } | Passage::Embed { .. }, _) => {
                let include_usage = matches!(
                    passage,
                    Passage::Translate {
                        include_usage: true
                    }
                );
                let stamp = stamp(model, provider.default_max_tokens, ctx);
                let t = StreamTranslator::new(adapter, ctx.wire, &stamp, include_usage);
                Scan::Translate(Box::new(t.bounded(env.snapshot.server.max_event_bytes)))
            }
        };
        return stream(
            env, conn, scratch, ctx, resp, origin, scan, deadline, sent, ttfb_us,
        )
        .await;
    }
    let status = resp.status;
    let upstream_us = ctx.upstream_us(sent);
    let content_type = resp.content_type.take();
    let retry_after = resp.retry_after.take();
    env.upstream.release(resp, origin);
    let ok = (200..300).contains(&status);
    let usage = match (ok, passage) {
        (false, _) => None,
        (true, Passage::Same { .. }) => {
            adapter.usage_from_body(&mut scratch.decoder, &scratch.body)
        }
        (true, Passage::Translate { .. }) => {
            scratch.events.clear();
            let stamp = stamp(model, provider.default_max_tokens, ctx);
            let usage = translate::response(
                adapter,
                ctx.wire,
                &mut scratch.body,
                &stamp,
                &mut scratch.events,
            )?;
            let limit = env.snapshot.server.max_response_bytes;
            if scratch.events.len() > limit {
                return Err(GatewayError::new(
                    Kind::UpstreamTooLarge,
                    format!("the translated answer is larger than {limit} bytes"),
                ));
            }
            std::mem::swap(&mut scratch.body, &mut scratch.events);
            Some(usage)
        }
        (true, Passage::Embed { base64 }) => {
            scratch.events.clear();
            let usage = translate::embed_response(
                adapter,
                &mut scratch.body,
                model,
                base64,
                &mut scratch.events,
            )?;
            std::mem::swap(&mut scratch.body, &mut scratch.events);
            Some(usage)
        }
    };
    if let (Some(u), Some(p)) = (&usage, super::limit::served_price(env, ctx)) {
        ctx.cost = Some(crate::routing::price::cost(&p, u));
    }
    let ct = match passage {
        Passage::Same { .. } => content_type,
        Passage::Translate { .. } | Passage::Embed { .. } => None,
    };
    let whole = Whole {
        status,
        content_type: ct,
        retry_after,
        usage,
        upstream_us,
        ttfb_us,
    };
    let guarded = ok && super::guardrail::checks_answers(env, ctx);
    reply(env, conn, scratch, ctx, whole, guarded).await
}

/// A whole answer, ready to write.
struct Whole {
    status: u16,
    /// The upstream's, for a same-protocol answer; else JSON.
    content_type: Option<std::borrow::Cow<'static, str>>,
    retry_after: Option<String>,
    usage: Option<Usage>,
    upstream_us: u64,
    ttfb_us: u64,
}

/// Writes a whole answer in `scratch.body` and stores it for the cache once the client has
/// it. `guarded`: response guardrails check it first; a redaction rewrites it, a block
/// replaces it with the client's error (the upstream answered, and is paid for).
async fn reply(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    whole: Whole,
    guarded: bool,
) -> Result<Outcome, GatewayError> {
    let blocked = match guarded {
        true => super::guardrail::answer(env, ctx, &mut scratch.decoder, &mut scratch.body)
            .await
            .err(),
        false => None,
    };
    let Whole {
        status,
        content_type,
        retry_after,
        usage,
        upstream_us,
        ttfb_us,
    } = whole;
    match &blocked {
        Some(e) => {
            let meta = meta(ctx, env.snapshot, Some(upstream_us));
            response::error(&mut conn.wbuf, e, &meta, ctx.wire);
        }
        None => {
            let mut cost = Vec::new();
            if let Some(c) = ctx.cost {
                crate::json::push_fixed8(&mut cost, c);
            }
            let cost = std::str::from_utf8(&cost).ok().filter(|c| !c.is_empty());
            let (extra, n) = extras(ctx, retry_after.as_deref(), cost);
            let meta = meta(ctx, env.snapshot, Some(upstream_us));
            let ct = content_type.as_deref().unwrap_or(response::JSON);
            response::full(
                &mut conn.wbuf,
                status,
                ct,
                &scratch.body,
                &meta,
                &extra[..n],
            );
        }
    }
    conn.flush().await?;
    let ok = (200..300).contains(&status);
    if ok && blocked.is_none() {
        // The answer as the client received it (translated and redacted already).
        super::cached::store(env, ctx, Some(&scratch.body));
    }
    Ok(Outcome {
        status: blocked.as_ref().map_or(status, GatewayError::status),
        usage,
        upstream_us: Some(upstream_us),
        ttfb_us: Some(ttfb_us),
        error: blocked,
        relayed_events: 0,
    })
}

/// What the stream loop does with each upstream event.
enum Scan {
    /// Forward as is, reading usage on the way.
    Same {
        adapter: &'static dyn Adapter,
        injected_usage: bool,
    },
    Translate(Box<StreamTranslator>),
    /// Translated (or decoded and encoded again, same protocol) with response guardrails
    /// between decoder and encoder.
    Guarded(Box<StreamTranslator>, Box<super::guardrail::stream::Guard>),
}

/// Forwards an upstream SSE stream event by event, each write flushed as it comes.
#[allow(clippy::too_many_arguments)]
async fn stream(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    mut resp: crate::upstream::Response,
    origin: &Origin,
    mut scan: Scan,
    deadline: monoio::time::Instant,
    sent: Instant,
    ttfb_us: u64,
) -> Result<Outcome, GatewayError> {
    let (extra, n) = extras(ctx, None, None);
    response::head(
        &mut conn.wbuf,
        200,
        response::SSE,
        None,
        &meta(ctx, env.snapshot, Some(ctx.upstream_us(sent))),
        &extra[..n],
    );
    // When the first events came in with the upstream's head, the head goes out with them in
    // one write; otherwise at once. `head_unsent`: its length while it waits in `wbuf`.
    let mut head_unsent = conn.wbuf.len();
    if !resp.has_buffered() {
        conn.flush().await?;
        head_unsent = 0;
    }
    let mut splitter = sse::Splitter::new(env.snapshot.server.max_event_bytes);
    let mut usage: Option<Usage> = None;
    let mut relayed_events = 0u64;
    let failure = loop {
        scratch.body.clear();
        scratch.events.clear();
        let next = {
            let next = pin!(monoio::time::timeout_at(
                deadline,
                resp.next(&mut scratch.body)
            ));
            unless_client_closes(conn, next).await
        };
        let more = match next {
            None => break Some(gone()),
            Some(Err(_)) => {
                break Some(GatewayError::new(
                    Kind::UpstreamTimeout,
                    "upstream stream exceeded the total timeout",
                ));
            }
            Some(Ok(Err(e))) => {
                break Some(GatewayError::new(
                    Kind::UpstreamProtocol,
                    format!("upstream stream broke: {e}"),
                ));
            }
            Some(Ok(Ok(more))) => more,
        };
        let (events, json) = (&mut scratch.events, &mut scratch.decoder);
        let split = match &mut scan {
            Scan::Same {
                adapter,
                injected_usage,
            } => splitter.feed(&scratch.body, |event| {
                // A usage-only event the gateway asked for, and the client did not, is held back.
                let usage_only =
                    sse::data(event).is_some_and(|d| adapter.usage_from_event(json, d, &mut usage));
                if !(usage_only && *injected_usage) {
                    events.extend_from_slice(event);
                }
            }),
            Scan::Translate(t) => {
                if let Err(e) = t.feed(&scratch.body, events) {
                    break Some(e);
                }
                usage = t.usage();
                Ok(())
            }
            Scan::Guarded(t, guard) => {
                if let Err(e) = t.feed(&scratch.body, events) {
                    break Some(e);
                }
                usage = t.usage();
                Box::pin(guard.drain(env, ctx, events)).await;
                if let Some(e) = guard.blocked() {
                    break Some(e);
                }
                Ok(())
            }
        };
        if let Err(e) = split {
            break Some(translate::event_too_large(e));
        }
        if !more {
            if let Scan::Translate(t) | Scan::Guarded(t, _) = &mut scan
                && let Err(e) = t.finish(&mut scratch.events)
            {
                break Some(e);
            }
            if let Scan::Guarded(_, guard) = &mut scan {
                Box::pin(guard.drain(env, ctx, &mut scratch.events)).await;
                if let Some(e) = guard.blocked() {
                    break Some(e);
                }
            }
            match &scan {
                // Whatever followed the last blank line goes out unchanged.
                Scan::Same { .. } => scratch.events.extend_from_slice(splitter.pending()),
                Scan::Translate(t) | Scan::Guarded(t, _) if !t.done() => {
                    break Some(GatewayError::new(
                        Kind::UpstreamProtocol,
                        "upstream stream ended before its final event",
                    ));
                }
                Scan::Translate(_) | Scan::Guarded(..) => {}
            }
        }
        if !scratch.events.is_empty() {
            if let Some(f) = &mut ctx.fill {
                f.record(&scratch.events, env.snapshot.cache.max_entry_bytes);
            }
            relayed_events += memchr::memmem::find_iter(&scratch.events, b"\n\n").count() as u64;
            chunked::frame(&mut conn.wbuf, &scratch.events);
        }
        if !more {
            conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
        }
        if !conn.wbuf.is_empty() && conn.flush().await.is_err() {
            break Some(gone());
        }
        head_unsent = 0;
        if !more {
            break None;
        }
    };
    if let Scan::Guarded(_, guard) = &mut scan {
        guard.settle(env, ctx, None);
    }
    let upstream_us = Some(ctx.upstream_us(sent));
    let mut outcome = Outcome {
        status: 200,
        usage,
        upstream_us,
        ttfb_us: Some(ttfb_us),
        error: None,
        relayed_events,
    };
    match failure {
        None => {
            env.upstream.release(resp, origin);
            if let Some(f) = &mut ctx.fill {
                f.streamed = true;
            }
            super::cached::store(env, ctx, None);
        }
        Some(e) => {
            // Dropping `resp` closes the upstream connection, so the provider stops generating.
            drop(resp);
            ctx.keep_alive = false;
            if e.kind == Kind::ClientDisconnected {
                outcome.status = 499;
            } else {
                // The head went out already (or waits in `wbuf`, and is kept): end the stream with
                // an in-band error and a clean end. Events translated before the failure go first.
                conn.wbuf.truncate(head_unsent);
                let mut event = std::mem::take(&mut scratch.events);
                ctx.wire.ingress().error_event(&e, &mut event);
                chunked::frame(&mut conn.wbuf, &event);
                event.clear();
                scratch.events = event;
                conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
                let _ = conn.flush().await;
            }
            outcome.error = Some(e);
        }
    }
    Ok(outcome)
}
