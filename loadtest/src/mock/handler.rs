//! Serves one connection: routes each request, applies its directives and writes the JSON
//! response, or hands an SSE one to `stream.rs`. How the bytes are framed and paced on the wire
//! (`big_head`, `head_trickle_ms`, chunking) is `wire.rs`'s business.

use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;

use super::conn::{Conn, ReadError};
use super::directives::{Directives, split_target};
use super::reply::{Plan, Reply};
use super::request::Body;
use super::responses::{self as r, Api, Head, Meta, Sse};
use super::stats::{RecordedRequest, Shared};
use super::stream;
use super::wire::{self, Wire};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Api(Api),
    Embeddings,
    Models,
    /// Anthropic's `count_tokens`: about four request bytes a token.
    CountTokens,
    Stats,
    Reset,
    NotFound,
}

/// What to do with the connection after a response.
#[derive(PartialEq, Eq)]
pub(crate) enum Next {
    KeepAlive,
    Close,
}

fn route(method: &str, path: &str, has_prefix: bool) -> Route {
    match (method, path) {
        ("POST", "/v1/chat/completions") => Route::Api(Api::Chat),
        ("POST", "/v1/completions") => Route::Api(Api::Completion),
        ("POST", "/v1/messages") => Route::Api(Api::Messages),
        ("POST", "/v2/chat") => Route::Api(Api::Cohere),
        ("POST", "/v1/messages/count_tokens") => Route::CountTokens,
        ("POST", "/v1/embeddings") => Route::Embeddings,
        ("GET", "/v1/models") => Route::Models,
        ("GET", "/mock/stats") if !has_prefix => Route::Stats,
        ("POST", "/mock/reset") if !has_prefix => Route::Reset,
        _ => Route::NotFound,
    }
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
                r::error_body(&mut conn.scratch, false, status, msg);
                let w = &mut Wire::plain();
                let _ = respond(&mut conn, w, status, "application/json", true, None).await;
                return;
            }
        };
        if handle(&mut conn, &shared, head, body).await == Next::Close {
            return;
        }
    }
}

/// Writes a response with `conn.scratch` as its body, framed as `w` says.
async fn respond(
    conn: &mut Conn,
    w: &mut Wire,
    status: u16,
    content_type: &str,
    close: bool,
    retry_after: Option<&str>,
) -> Next {
    let h = Head {
        status,
        content_type,
        content_length: None,
        close,
        retry_after,
    };
    match wire::whole(conn, w, h).await {
        Ok(()) if !close => Next::KeepAlive,
        _ => Next::Close,
    }
}

async fn handle(conn: &mut Conn, shared: &Shared, head: super::conn::Head, body: Vec<u8>) -> Next {
    let (segment, path, query) = split_target(&head.target);
    let route = route(&head.method, path, segment.is_some());
    let mut close = !head.keep_alive;

    match route {
        Route::Stats => {
            conn.scratch.clear();
            conn.scratch
                .extend_from_slice(shared.snapshot().to_json().as_bytes());
            let w = &mut Wire::plain();
            return respond(conn, w, 200, "application/json", close, None).await;
        }
        Route::Reset => {
            shared.reset();
            conn.scratch.clear();
            conn.scratch.extend_from_slice(b"{\"ok\":true}");
            let w = &mut Wire::plain();
            return respond(conn, w, 200, "application/json", close, None).await;
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
    let not_found =
        (route == Route::NotFound).then(|| format!("mock: no route for {} {}", head.method, path));
    close |= d.close;

    let body_len = body.len();
    shared.record(RecordedRequest {
        method: head.method,
        path: head.target,
        headers: head.headers,
        body,
    });

    let anthropic = matches!(route, Route::Api(Api::Messages) | Route::CountTokens);
    let cohere = route == Route::Api(Api::Cohere);
    let retry_after = d.retry_after.as_deref();
    let error = |conn: &mut Conn, status: u16, msg: &str| {
        conn.scratch.clear();
        if cohere {
            r::cohere_error(&mut conn.scratch, msg);
        } else {
            r::error_body(&mut conn.scratch, anthropic, status, msg);
        }
    };
    if let Some(msg) = problem {
        // Directives that did not all parse shape nothing: a plain 400.
        error(conn, 400, &msg);
        let w = &mut Wire::plain();
        return respond(conn, w, 400, "application/json", close, retry_after).await;
    }
    let w = &mut Wire::new(&d);
    let stream = matches!(route, Route::Api(_)) && parsed.as_ref().is_ok_and(Body::stream);

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
    if let Some(status) = d.status.filter(|&s| s != 200) {
        error(conn, status, &format!("mock: status {status} requested"));
        return respond(conn, w, status, "application/json", close, retry_after).await;
    }
    if let Some(msg) = not_found {
        error(conn, 404, &msg);
        return respond(conn, w, 404, "application/json", close, retry_after).await;
    }
    let b = match parsed {
        Ok(b) => b,
        Err(_) if route == Route::Models => Body::default(),
        Err(msg) => {
            error(conn, 400, &msg);
            return respond(conn, w, 400, "application/json", close, retry_after).await;
        }
    };
    let model = b.model.as_deref().unwrap_or("mock-model");
    let mut reply = match route {
        Route::Api(api) => Reply::new(api, &d, &b),
        _ => Reply::text(d.chunks),
    };
    let mut meta = Meta::new(shared.next_id(), model, body_len, &reply);
    meta.report(d.cached_tokens, d.reasoning_tokens);
    if d.usage_huge {
        meta.huge_usage();
    }
    conn.scratch.clear();
    match route {
        Route::Models => r::models(&mut conn.scratch),
        Route::CountTokens => {
            conn.scratch.extend_from_slice(b"{\"input_tokens\":");
            r::num(&mut conn.scratch, (body_len as u64 / 4).max(1));
            conn.scratch.push(b'}');
        }
        Route::Embeddings => {
            let Some(input) = b.input else {
                error(conn, 400, "mock: embeddings request without input");
                return respond(conn, w, 400, "application/json", close, retry_after).await;
            };
            let dims = d.dims.or(b.dimensions).unwrap_or(8).clamp(1, 1_000_000);
            r::embeddings(&mut conn.scratch, &meta, input.0, dims);
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
            };
            return stream::send(conn, shared, &sse, &plan, &d, close).await;
        }
        Route::Api(api) => json_body(conn, api, &meta, &mut reply, d.huge_body),
        _ => unreachable!("control routes answered above"),
    }
    respond(conn, w, 200, "application/json", close, retry_after).await
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
