//! The OpenAI ingress: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`, `/v1/models`.
//! `run` routes the path; proxied endpoints go through the shared stages ([`super::proxy`]),
//! `/v1/models` is answered here.

use super::Env;
use super::{Ctx, Outcome, Scratch};
use crate::auth::Principal;
use crate::error::{GatewayError, Kind};
use crate::http::conn::Conn;
use crate::http::request::{Head, Method};
use crate::http::response::{self, Meta};
use crate::json;
use crate::providers::Endpoint;

enum Route {
    Models,
    Model(std::ops::Range<usize>),
    Proxy(Endpoint),
}

fn route(method: Method, path: &[u8]) -> Result<Route, GatewayError> {
    let path = crate::http::without_query(path);
    let rest = path.strip_prefix(b"/v1").unwrap_or(path);
    let (route, allowed) = match rest {
        b"/chat/completions" => (Route::Proxy(Endpoint::Chat), Method::Post),
        b"/completions" => (Route::Proxy(Endpoint::Completions), Method::Post),
        b"/embeddings" => (Route::Proxy(Endpoint::Embeddings), Method::Post),
        b"/models" => (Route::Models, Method::Get),
        _ => match rest.strip_prefix(b"/models/") {
            Some(id) if !id.is_empty() => {
                let start = id.as_ptr() as usize - path.as_ptr() as usize;
                (Route::Model(start..start + id.len()), Method::Get)
            }
            _ => {
                let shown = String::from_utf8_lossy(path);
                return Err(GatewayError::new(
                    Kind::NotFound,
                    format!("unknown path {shown}"),
                ));
            }
        },
    };
    if method != allowed {
        let want = if allowed == Method::Get {
            "GET"
        } else {
            "POST"
        };
        return Err(GatewayError::new(
            Kind::MethodNotAllowed,
            format!("this endpoint takes {want}"),
        ));
    }
    Ok(route)
}

/// The OpenAI ingress: the path, then the shared proxy stages or the models list.
pub(super) async fn run(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    head: &Head,
    ctx: &mut Ctx,
) -> Result<Outcome, GatewayError> {
    let route = route(head.method, &conn.rbuf[head.path.clone()])?;
    if let Route::Proxy(endpoint) = route {
        return super::proxy(env, conn, scratch, head, ctx, endpoint, None).await;
    }
    let key = super::authenticate(env, ctx, conn, head)?;
    ctx.key = Some(key);
    // GET routes ignore a body; a connection whose body was not read cannot be reused.
    ctx.body_read = !head.chunked && head.content_length.unwrap_or(0) == 0;
    if !ctx.body_read {
        ctx.keep_alive = false;
        conn.mark_unframed();
    }
    match route {
        Route::Models => models(conn, ctx, env, key, None).await,
        Route::Model(r) => {
            let start = head.path.start + r.start;
            let id = String::from_utf8_lossy(&conn.rbuf[start..start + r.len()]).into_owned();
            models(conn, ctx, env, key, Some(&id)).await
        }
        Route::Proxy(_) => unreachable!("proxied above"),
    }
}

/// `GET /v1/models` (the aliases this key may use) and `GET /v1/models/{id}`.
async fn models(
    conn: &mut Conn,
    ctx: &mut Ctx,
    env: &Env<'_>,
    key: Principal,
    one: Option<&str>,
) -> Result<Outcome, GatewayError> {
    let (snap, keys) = (env.snapshot, env.keys);
    let push = |out: &mut Vec<u8>, alias: &str| {
        out.extend_from_slice(b"{\"id\":");
        json::push_str(out, alias);
        out.extend_from_slice(b",\"object\":\"model\",\"created\":0,\"owned_by\":\"shardgate\"}");
    };
    let mut body = Vec::with_capacity(256);
    if let Some(id) = one {
        match snap.model(id) {
            Some((_, m)) if keys.may_use(key, &m.alias) => push(&mut body, &m.alias),
            _ => {
                return Err(GatewayError::new(
                    Kind::ModelNotFound,
                    format!("the model `{id}` does not exist"),
                ));
            }
        }
    } else {
        body.extend_from_slice(b"{\"object\":\"list\",\"data\":[");
        let mut first = true;
        for m in &snap.models {
            if keys.may_use(key, &m.alias) {
                if !first {
                    body.push(b',');
                }
                first = false;
                push(&mut body, &m.alias);
            }
        }
        body.extend_from_slice(b"]}");
    }
    let meta = Meta {
        request_id: ctx.id(),
        keep_alive: ctx.keep_alive,
        timing: Some((ctx.elapsed_us(), None)),
        route: None,
        rates: None,
        cache: None,
        guardrails: None,
    };
    response::full(&mut conn.wbuf, 200, response::JSON, &body, &meta, &[]);
    conn.flush().await?;
    Ok(Outcome {
        status: 200,
        ..Outcome::default()
    })
}
