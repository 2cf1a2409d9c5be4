//! The Anthropic ingress: `POST /v1/messages` and `POST /v1/messages/count_tokens`, for clients
//! of Anthropic's SDKs (Claude Code among them). `run` is the whole lifecycle of one request;
//! every error comes back in Anthropic's shape.

use super::{Ctx, Outcome, Scratch, attempt};
use crate::error::{GatewayError, Kind};
use crate::http::conn::Conn;
use crate::http::request::{Head, Method};
use crate::http::response::{self, Meta};
use crate::json;
use crate::providers::{Endpoint, Protocol, anthropic};
use crate::runtime::shard::Shard;

fn without_query(path: &[u8]) -> &[u8] {
    match memchr::memchr(b'?', path) {
        Some(q) => &path[..q],
        None => path,
    }
}

/// Whether a request path belongs to this ingress.
pub fn is_own(path: &[u8]) -> bool {
    let p = without_query(path);
    p == b"/v1/messages" || p.starts_with(b"/v1/messages/")
}

fn route(method: Method, path: &[u8]) -> Result<Endpoint, GatewayError> {
    let endpoint = match without_query(path) {
        b"/v1/messages" => Endpoint::Messages,
        b"/v1/messages/count_tokens" => Endpoint::CountTokens,
        p => {
            let shown = String::from_utf8_lossy(p);
            return Err(GatewayError::new(
                Kind::NotFound,
                format!("unknown path {shown}"),
            ));
        }
    };
    if method != Method::Post {
        return Err(GatewayError::new(
            Kind::MethodNotAllowed,
            "this endpoint takes POST",
        ));
    }
    Ok(endpoint)
}

/// The Anthropic ingress, stage by stage.
pub(super) async fn run(
    shard: &Shard,
    conn: &mut Conn,
    scratch: &mut Scratch,
    head: &Head,
    ctx: &mut Ctx,
) -> Result<Outcome, GatewayError> {
    let snap = &shard.snapshot;
    let endpoint = route(head.method, &conn.rbuf[head.path.clone()])?;
    let key = snap
        .keys
        .authenticate(head.api_key.clone().map(|r| &conn.rbuf[r]))?;
    ctx.key = Some(key);

    let body_at = conn.read_body(head, &shard.limits).await?;
    ctx.body_read = true;
    let body = conn.body(&body_at);
    let decoded = scratch.decoder.decode(body)?;
    let model = super::admit(snap, ctx, key, decoded.alias(body))?;

    let target = &model.targets[0];
    let provider = &snap.providers[target.provider];
    if endpoint == Endpoint::CountTokens && provider.protocol != Protocol::Anthropic {
        ctx.provider = target.provider as u32;
        return estimate(conn, ctx, &body_at).await;
    }
    ctx.stream = decoded.stream && endpoint.streams();
    let rf = super::route_facts(shard, conn, head, &body_at, &decoded);
    let facts = rf.facts(ctx, snap);
    attempt::route(
        shard, conn, scratch, ctx, endpoint, &body_at, &decoded, &facts,
    )
    .await
}

/// `count_tokens` for a provider that cannot count: a local estimate, marked as one.
async fn estimate(
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
    json::push_u64(&mut body, tokens);
    body.push(b'}');
    let meta = Meta {
        request_id: ctx.id(),
        keep_alive: ctx.keep_alive,
        timing: Some((ctx.elapsed_us(), None)),
        route: None,
    };
    response::full(
        &mut conn.wbuf,
        200,
        response::JSON,
        &body,
        &meta,
        &[("x-shardgate-estimated", b"true")],
    );
    conn.flush().await?;
    Ok(Outcome {
        status: 200,
        ..Outcome::default()
    })
}
