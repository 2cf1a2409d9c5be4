//! Serves one connection: routes each request (`routes.rs`), checks its authentication,
//! applies its directives and writes the JSON response in its protocol's shape (errors in its
//! protocol's error body), or hands a streamed one to `stream.rs`. How the bytes are framed
//! and paced on the wire (`big_head`, `head_trickle_ms`, chunking) is `wire.rs`'s business.

use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;

use super::conn::{Conn, ReadError};
use super::directives::{Directives, split_target};
use super::reply::{Plan, Reply};
use super::request::Body;
use super::responses::{self as r, Api, Head, Meta, Sse};
use super::routes::{self, Family, Route};
use super::stats::{RecordedRequest, Shared};
use super::stream;
use super::wire::{self, Wire};
use super::words::{self, Source};
use super::{embed, errors, guardrail};

/// What to do with the connection after a response.
#[derive(PartialEq, Eq)]
pub(crate) enum Next {
    KeepAlive,
    Close,
}

/// Serves requests on `stream` until either side closes.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Conn::new(stream);
    loop {
        let (head, body) = match conn.read_request().await {
            Ok(Some(req)) => req,
            Ok(None) | Err(ReadError::Gone) => return,
            Err(ReadError::Bad(status, msg)) => {
                conn.scratch.clear();
                errors::body(&mut conn.scratch, Family::OpenAi, status, msg);
                let w = &mut Wire::plain();
                let _ = respond(&mut conn, w, status, true, None, None).await;
                return;
            }
        };
        if handle(&mut conn, &shared, head, body).await == Next::Close {
            return;
        }
    }
}

/// Writes a JSON response with `conn.scratch` as its body, framed as `w` says.
async fn respond(
    conn: &mut Conn,
    w: &mut Wire,
    status: u16,
    close: bool,
    retry_after: Option<&str>,
    extra: Option<(&str, &str)>,
) -> Next {
    let h = Head {
        status,
        content_type: "application/json",
        content_length: None,
        close,
        retry_after,
        extra,
    };
    match wire::whole(conn, w, h).await {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

async fn handle(conn: &mut Conn, shared: &Shared, head: super::conn::Head, body: Vec<u8>) -> Next {
    let (segment, path, query) = split_target(&head.target);
    let t = routes::route(&head.method, path, segment.is_some());
    let mut close = !head.keep_alive;

    match t.route {
        Route::Stats => {
            conn.scratch.clear();
            conn.scratch
                .extend_from_slice(shared.snapshot().to_json().as_bytes());
            return respond(conn, &mut Wire::plain(), 200, close, None, None).await;
        }
        Route::Token => {
            let (status, answer) = match super::token::exchange(&body) {
                Ok(a) => (200, a),
                Err(e) => (400, e),
            };
            conn.scratch.clear();
            conn.scratch.extend_from_slice(answer.as_bytes());
            return respond(conn, &mut Wire::plain(), status, close, None, None).await;
        }
        Route::Reset => {
            shared.reset();
            conn.scratch.clear();
            conn.scratch.extend_from_slice(b"{\"ok\":true}");
            return respond(conn, &mut Wire::plain(), 200, close, None, None).await;
        }
        _ => {}
    }

    // Directives, in increasing precedence: path prefix, headers, query, body.
    let parsed = Body::parse(&body);
    let mut d = Directives::default();
    let mut problem: Option<String> = None;
    let mut note = |res: Result<(), String>| {
        if let Err(e) = res {
            problem.get_or_insert(e);
        }
    };
    if let Some(seg) = segment {
        note(d.apply_path_segment(seg));
    }
    for (name, value) in &head.headers {
        if let Some(n) = name.strip_prefix("x-mock-") {
            note(d.set_strict(n, value));
        }
    }
    note(d.apply_query(query));
    if let Ok(b) = &parsed {
        for (name, value) in b.mock_directives() {
            note(d.set_strict(name, &value));
        }
    }
    let not_found = (t.route == Route::NotFound)
        .then(|| format!("mock: no route for {} {}", head.method, path));
    close |= d.close;
    let denied = routes::denied(
        &t,
        &head.method,
        &head.target,
        &head.headers,
        &body,
        shared.aws.as_ref(),
    );

    let body_len = body.len();
    // Text-dependent vectors (`words.rs`) need the inputs' texts, read before the body is kept.
    let named = t.model.as_deref();
    let named = named.or_else(|| parsed.as_ref().ok().and_then(|b| b.model.as_deref()));
    let words = match t.route {
        Route::Embeddings if named.is_some_and(words::wanted) => words::texts(&body, None),
        Route::Embed(kind) if named.is_some_and(words::wanted) => words::texts(&body, Some(kind)),
        _ => None,
    };
    let src = words.as_deref().map_or(Source::Index, Source::Words);
    let call = (t.route == Route::Guardrail).then(|| guardrail::Call::parse(&body));
    shared.count_api(t.stat);
    if t.route == Route::Api(Api::Responses)
        && parsed
            .as_ref()
            .is_ok_and(|b| b.previous_response_id.is_some())
    {
        shared.previous_response();
    }
    shared.record(RecordedRequest {
        method: head.method,
        path: head.target,
        headers: head.headers,
        body,
    });

    let retry_after = d.retry_after.as_deref();
    let family = t.family;
    if let Some(msg) = problem {
        // Directives that did not all parse shape nothing: a plain 400.
        let extra = errors::body(&mut conn.scratch, family, 400, &msg);
        return respond(conn, &mut Wire::plain(), 400, close, retry_after, extra).await;
    }
    if let Some(no) = denied {
        let extra = errors::body(&mut conn.scratch, family, no.status, &no.message);
        let extra = no.error_type.map(|e| ("x-amzn-errortype", e)).or(extra);
        return respond(conn, &mut Wire::plain(), no.status, close, None, extra).await;
    }
    let w = &mut Wire::new(&d);
    let stream = matches!(t.route, Route::Api(_))
        && t.stream
            .unwrap_or_else(|| parsed.as_ref().is_ok_and(Body::stream));

    if d.drop_after == Some(0) || (d.drop_after.is_some() && !stream) {
        return Next::Close;
    }
    if d.hang {
        conn.wait_for_close().await;
        return Next::Close;
    }
    if d.latency_ms > 0
        && !conn
            .sleep_watching(Duration::from_millis(d.latency_ms))
            .await
    {
        if stream {
            shared.stream_aborted();
        }
        return Next::Close;
    }
    let fail = |conn: &mut Conn, status: u16, msg: &str| {
        (status, errors::body(&mut conn.scratch, family, status, msg))
    };
    let failed = if let Some(status) = d.status.filter(|&s| s != 200) {
        Some(fail(
            conn,
            status,
            &format!("mock: status {status} requested"),
        ))
    } else if let Some(msg) = not_found {
        Some(fail(conn, 404, &msg))
    } else if let Route::Unsupported(msg) = t.route {
        Some(fail(conn, 400, msg))
    } else {
        None
    };
    if let Some((status, extra)) = failed {
        return respond(conn, w, status, close, retry_after, extra).await;
    }
    let b = match parsed {
        Ok(b) => b,
        Err(_) if t.route == Route::Models => Body::default(),
        Err(msg) => {
            let extra = errors::body(&mut conn.scratch, family, 400, &msg);
            return respond(conn, w, 400, close, retry_after, extra).await;
        }
    };
    let model = t
        .model
        .as_deref()
        .or(b.model.as_deref())
        .unwrap_or("mock-model");
    let mut reply = match t.route {
        Route::Api(api) => Reply::new(api, &d, &b),
        _ => Reply::text(d.chunks),
    };
    let mut meta = Meta::new(shared.next_id(), model, body_len, &reply);
    meta.report(d.cached_tokens, d.reasoning_tokens);
    meta.latency_ms = d.latency_ms;
    if d.usage_huge {
        meta.huge_usage();
    }
    conn.scratch.clear();
    let dims = d
        .dims
        .or(b.dimensions)
        .or(b.output_dimensionality)
        .unwrap_or(8)
        .clamp(1, 1_000_000);
    match t.route {
        Route::Models => r::models(&mut conn.scratch),
        Route::CountTokens => {
            conn.scratch.extend_from_slice(b"{\"input_tokens\":");
            r::num(&mut conn.scratch, (body_len as u64 / 4).max(1));
            conn.scratch.push(b'}');
        }
        Route::Embeddings => {
            let Some(input) = b.input else {
                let msg = "mock: embeddings request without input";
                let extra = errors::body(&mut conn.scratch, family, 400, msg);
                return respond(conn, w, 400, close, retry_after, extra).await;
            };
            r::embeddings(&mut conn.scratch, &meta, input.0, dims, src);
        }
        Route::Embed(kind) => {
            if let Err(msg) = embed::body(&mut conn.scratch, kind, &meta, &b, dims, src) {
                let extra = errors::body(&mut conn.scratch, family, 400, &msg);
                return respond(conn, w, 400, close, retry_after, extra).await;
            }
        }
        Route::Guardrail => {
            let call = call.expect("parsed for this route");
            let call = match call {
                Ok(c) => c,
                Err(msg) => {
                    let extra = errors::body(&mut conn.scratch, family, 400, &msg);
                    return respond(conn, w, 400, close, retry_after, extra).await;
                }
            };
            if call.slow() && !conn.sleep_watching(guardrail::SLOW).await {
                return Next::Close;
            }
            let status = call.answer(&mut conn.scratch);
            return respond(conn, w, status, close, retry_after, None).await;
        }
        Route::Api(_) if d.malformed && !stream => {
            conn.scratch.extend_from_slice(r::MALFORMED_BODY)
        }
        Route::Api(api) if stream => {
            let usage = b.include_usage() && matches!(api, Api::Chat | Api::Completion);
            let plan = Plan::new(api, &reply, usage, d.malformed);
            let sse = Sse {
                api,
                meta: &meta,
                reply: &reply,
                usage_null: usage,
                seq: Default::default(),
            };
            return stream::send(conn, shared, &sse, &plan, &d, close).await;
        }
        Route::Api(api) => json_body(conn, api, &meta, &mut reply, d.huge_body),
        _ => unreachable!("control and failing routes answered above"),
    }
    respond(conn, w, 200, close, retry_after, None).await
}

/// Builds a JSON answer in `conn.scratch`; with `huge_body=N`, a text answer is built again with
/// its text padded so that the body is exactly N bytes (a tool-call answer has no text to pad).
fn json_body(conn: &mut Conn, api: Api, meta: &Meta, reply: &mut Reply, huge: Option<u64>) {
    r::json_body(&mut conn.scratch, api, meta, reply);
    let len = conn.scratch.len() as u64;
    if let Some(n) = huge.filter(|&n| n > len && reply.calls == 0) {
        reply.pad = n - len;
        conn.scratch.clear();
        r::json_body(&mut conn.scratch, api, meta, reply);
    }
}
