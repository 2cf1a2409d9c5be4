//! The Anthropic ingress: `POST /v1/messages` and `POST /v1/messages/count_tokens`, for clients
//! of Anthropic's SDKs (Claude Code among them). After the path the stages are the shared ones
//! ([`super::proxy`]); every error comes back in Anthropic's shape.

use super::Env;
use super::{Ctx, Outcome, Scratch};
use crate::error::{GatewayError, Kind};
use crate::http::conn::Conn;
use crate::http::request::{Head, Method};
use crate::http::without_query;
use crate::providers::Endpoint;

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

/// The Anthropic ingress: the path, then the shared proxy stages.
pub(super) async fn run(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    head: &Head,
    ctx: &mut Ctx,
) -> Result<Outcome, GatewayError> {
    let endpoint = route(head.method, &conn.rbuf[head.path.clone()])?;
    super::proxy(env, conn, scratch, head, ctx, endpoint, None).await
}
