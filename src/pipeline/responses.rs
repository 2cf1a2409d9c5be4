//! The OpenAI Responses ingress: `POST /v1/responses`, for the openai SDK's `responses` API
//! (the Agents SDK, Codex). After the path the stages are the shared ones ([`super::proxy`]).
//! The gateway keeps no responses: reading, deleting or listing a stored one (`GET`/`DELETE
//! /v1/responses/{id}`, `…/input_items`) is a clear 400, and a request that builds on one
//! (`previous_response_id`) reaches only an upstream that speaks the Responses API itself.

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
    p == b"/v1/responses" || p.starts_with(b"/v1/responses/")
}

fn route(method: Method, path: &[u8]) -> Result<Endpoint, GatewayError> {
    if without_query(path) != b"/v1/responses" {
        return Err(GatewayError::new(
            Kind::BadRequest,
            "the gateway stores no responses: a stored response cannot be read, listed or \
             deleted here (send `store: false`, or the whole conversation in `input`)",
        ));
    }
    if method != Method::Post {
        return Err(GatewayError::new(
            Kind::MethodNotAllowed,
            "this endpoint takes POST",
        ));
    }
    Ok(Endpoint::Responses)
}

/// The Responses ingress: the path, then the shared proxy stages.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_creating_a_response_is_served() {
        assert!(is_own(b"/v1/responses") && is_own(b"/v1/responses/resp_1?x=1"));
        assert!(!is_own(b"/v1/responsesx") && !is_own(b"/v1/chat/completions"));
        assert_eq!(
            route(Method::Post, b"/v1/responses").unwrap(),
            Endpoint::Responses
        );
        let e = route(Method::Get, b"/v1/responses/resp_1").unwrap_err();
        assert_eq!(e.kind, Kind::BadRequest);
        assert!(e.message.contains("stores no responses"));
        let e = route(Method::Get, b"/v1/responses").unwrap_err();
        assert_eq!(e.kind, Kind::MethodNotAllowed);
    }
}
