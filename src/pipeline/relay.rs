//! The relay stage: send upstream, then return the answer — whole for JSON, event by event for
//! SSE. Same-protocol streams are forwarded as the upstream's own bytes; the only edit is to
//! drop the usage-only chunk the gateway asked for when the client did not.
//!
//! While waiting on the upstream, the client socket is watched (readiness and a peek, never a
//! read), so a client that goes away closes the upstream connection at once.

use std::future::Future;
use std::pin::pin;
use std::time::Instant;

use super::{Ctx, Outcome, Scratch};
use crate::config::{Origin, Provider};
use crate::error::{GatewayError, Kind};
use crate::http::chunked;
use crate::http::conn::Conn;
use crate::http::response::{self, Meta};
use crate::http::sse;
use crate::providers::{Usage, mock, openai};
use crate::runtime::shard::Shard;

/// Largest non-streamed upstream body the gateway will hold.
const MAX_UPSTREAM_BODY: usize = 64 << 20;

/// Runs `fut` unless the client closes first (`None`).
async fn unless_client_closes<F: Future>(conn: &Conn, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
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

fn gone() -> GatewayError {
    GatewayError::new(Kind::ClientDisconnected, "client closed the connection")
}

fn meta<'a>(ctx: &'a Ctx, upstream_us: Option<u64>) -> Meta<'a> {
    let total = ctx.elapsed_us();
    let own = total.saturating_sub(upstream_us.unwrap_or(0));
    Meta {
        request_id: ctx.id(),
        keep_alive: ctx.keep_alive,
        timing: Some((own, upstream_us)),
    }
}

/// A reply produced in-process (the built-in mock provider).
pub async fn local(
    conn: &mut Conn,
    ctx: &mut Ctx,
    reply: mock::Reply,
) -> Result<Outcome, GatewayError> {
    if reply.stream {
        response::head(
            &mut conn.wbuf,
            200,
            response::SSE,
            None,
            &meta(ctx, None),
            &[],
        );
        chunked::frame(&mut conn.wbuf, &reply.body);
        conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
    } else {
        response::full(
            &mut conn.wbuf,
            200,
            response::JSON,
            &reply.body,
            &meta(ctx, None),
            &[],
        );
    }
    conn.flush().await?;
    Ok(Outcome {
        status: 200,
        usage: Some(reply.usage),
        ..Outcome::default()
    })
}

/// Sends the request in `scratch.upstream` and relays the answer.
pub async fn proxy(
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    provider: &Provider,
    origin: &Origin,
    injected_usage: bool,
) -> Result<Outcome, GatewayError> {
    let deadline = monoio::time::Instant::now() + provider.timeouts.total;
    let total_timeout = || {
        let ms = provider.timeouts.total.as_millis();
        GatewayError::new(
            Kind::UpstreamTimeout,
            format!(
                "upstream provider {:?} did not finish within {ms} ms",
                provider.name
            ),
        )
    };
    // One watch over the whole exchange (send, head, and a JSON body): one readiness wait on
    // the client socket per request instead of one per phase.
    let sent = Instant::now();
    let wants_stream = ctx.stream;
    let (upstream, body) = (&mut scratch.upstream, &mut scratch.body);
    let exchange = async move {
        let mut resp = shard.upstream.send(provider, origin, upstream).await?;
        let ttfb_us = sent.elapsed().as_micros() as u64;
        let status = resp.status;
        if !(200..500).contains(&status) {
            // The connection is dropped (closed) with `resp`; the body is not needed.
            let what = format!(
                "upstream provider {:?} ({origin}) returned HTTP {status}",
                provider.name
            );
            return Err(GatewayError::new(Kind::UpstreamServer, what));
        }
        let is_sse = resp
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if wants_stream && is_sse && (200..300).contains(&status) {
            return Ok((resp, ttfb_us, true));
        }
        body.clear();
        if let Err(e) = resp.read_to_end(body, MAX_UPSTREAM_BODY).await {
            let what = format!(
                "upstream provider {:?} ({origin}) sent a broken body: {e}",
                provider.name
            );
            return Err(GatewayError::new(Kind::UpstreamProtocol, what));
        }
        Ok((resp, ttfb_us, false))
    };
    let (mut resp, ttfb_us, streaming) =
        match unless_client_closes(conn, monoio::time::timeout_at(deadline, exchange)).await {
            None => return Err(gone()),
            Some(Err(_)) => return Err(total_timeout()),
            Some(Ok(r)) => r?,
        };
    if streaming {
        return stream(
            shard,
            conn,
            scratch,
            ctx,
            resp,
            origin,
            injected_usage,
            deadline,
            sent,
            ttfb_us,
        )
        .await;
    }
    let status = resp.status;
    let upstream_us = sent.elapsed().as_micros() as u64;
    let usage = if (200..300).contains(&status) {
        openai::usage_from_body(&mut scratch.decoder, &scratch.body)
    } else {
        None
    };
    let content_type = resp.content_type.take();
    let retry_after = resp.retry_after.take();
    shard.upstream.release(resp, origin);
    let extra: &[(&str, &[u8])] = match &retry_after {
        Some(v) => &[("retry-after", v.as_bytes())],
        None => &[],
    };
    let ct = content_type.as_deref().unwrap_or(response::JSON);
    response::full(
        &mut conn.wbuf,
        status,
        ct,
        &scratch.body,
        &meta(ctx, Some(upstream_us)),
        extra,
    );
    conn.flush().await?;
    Ok(Outcome {
        status,
        usage,
        upstream_us: Some(upstream_us),
        ttfb_us: Some(ttfb_us),
        error: None,
    })
}

/// Forwards an upstream SSE stream event by event, each write flushed as it comes.
#[allow(clippy::too_many_arguments)]
async fn stream(
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    ctx: &mut Ctx,
    mut resp: crate::upstream::Response,
    origin: &Origin,
    injected_usage: bool,
    deadline: monoio::time::Instant,
    sent: Instant,
    ttfb_us: u64,
) -> Result<Outcome, GatewayError> {
    response::head(
        &mut conn.wbuf,
        200,
        response::SSE,
        None,
        &meta(ctx, Some(ttfb_us)),
        &[],
    );
    conn.flush().await?;
    let mut splitter = sse::Splitter::default();
    let mut usage: Option<Usage> = None;
    let failure = loop {
        scratch.body.clear();
        let next = resp.next(&mut scratch.body);
        let more = match unless_client_closes(conn, monoio::time::timeout_at(deadline, next)).await
        {
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
        scratch.events.clear();
        let (events, json) = (&mut scratch.events, &mut scratch.decoder);
        splitter.feed(&scratch.body, |event| {
            if let Some((u, usage_only)) =
                sse::data(event).and_then(|d| openai::usage_from_event(json, d))
            {
                usage = Some(u);
                if usage_only && injected_usage {
                    return;
                }
            }
            events.extend_from_slice(event);
        });
        if !more {
            // Whatever followed the last blank line goes out unchanged.
            scratch.events.extend_from_slice(splitter.pending());
        }
        if !scratch.events.is_empty() {
            chunked::frame(&mut conn.wbuf, &scratch.events);
        }
        if !more {
            conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
        }
        if !conn.wbuf.is_empty() && conn.flush().await.is_err() {
            break Some(gone());
        }
        if !more {
            break None;
        }
    };
    let upstream_us = Some(sent.elapsed().as_micros() as u64);
    let mut outcome = Outcome {
        status: 200,
        usage,
        upstream_us,
        ttfb_us: Some(ttfb_us),
        error: None,
    };
    match failure {
        None => shard.upstream.release(resp, origin),
        Some(e) => {
            // Dropping `resp` closes the upstream connection, so the provider stops generating.
            drop(resp);
            ctx.keep_alive = false;
            if e.kind == Kind::ClientDisconnected {
                outcome.status = 499;
            } else {
                // The head went out already: end the stream with an in-band error and a clean end.
                conn.wbuf.clear();
                let mut event = b"data: ".to_vec();
                e.write_openai_body(&mut event);
                event.extend_from_slice(b"\n\n");
                chunked::frame(&mut conn.wbuf, &event);
                conn.wbuf.extend_from_slice(chunked::LAST_CHUNK);
                let _ = conn.flush().await;
            }
            outcome.error = Some(e);
        }
    }
    Ok(outcome)
}
