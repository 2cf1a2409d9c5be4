//! The Gemini ingress: `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent` (also under `/v1/`), so `google-genai` users can point `base_url`
//! at the gateway. The model and whether to stream come from the path, not the body; after the
//! path the stages are the shared ones ([`super::proxy`]). Streams are always server-sent
//! events (`?alt=sse`, which Google's SDKs ask for).

use std::ops::Range;

use super::Env;
use super::{Ctx, Outcome, Scratch};
use crate::error::{GatewayError, Kind};
use crate::http::conn::Conn;
use crate::http::request::{Head, Method};
use crate::http::without_query;
use crate::providers::Endpoint;

/// Where the model is in the path, and whether the method streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathModel {
    pub model: Range<usize>,
    pub stream: bool,
}

/// `models/{model}:{method}` under a version prefix, with the offset of the model in `path`.
fn split(path: &[u8]) -> Option<(usize, &[u8], &[u8])> {
    let p = without_query(path);
    let rest = p
        .strip_prefix(b"/v1beta/models/")
        .or_else(|| p.strip_prefix(b"/v1/models/"))?;
    let colon = memchr::memrchr(b':', rest)?;
    let start = p.len() - rest.len();
    Some((start, &rest[..colon], &rest[colon + 1..]))
}

/// Whether a request path belongs to this ingress (OpenAI's `GET /v1/models/{id}` has no
/// `:method`, and stays OpenAI's).
pub fn is_own(path: &[u8]) -> bool {
    let p = without_query(path);
    p.starts_with(b"/v1beta/") || split(p).is_some()
}

fn route(method: Method, path: &[u8]) -> Result<(Endpoint, PathModel), GatewayError> {
    let Some((start, model, verb)) = split(path) else {
        let shown = String::from_utf8_lossy(without_query(path));
        return Err(GatewayError::new(
            Kind::NotFound,
            format!("unknown path {shown}"),
        ));
    };
    let stream = match verb {
        b"generateContent" => false,
        b"streamGenerateContent" => true,
        other => {
            let shown = String::from_utf8_lossy(other);
            return Err(GatewayError::new(
                Kind::NotFound,
                format!(
                    "the gateway serves generateContent and streamGenerateContent, not {shown}"
                ),
            ));
        }
    };
    if model.is_empty() {
        return Err(GatewayError::new(
            Kind::BadRequest,
            "the path names no model",
        ));
    }
    if method != Method::Post {
        return Err(GatewayError::new(
            Kind::MethodNotAllowed,
            "this endpoint takes POST",
        ));
    }
    let at = PathModel {
        model: start..start + model.len(),
        stream,
    };
    Ok((Endpoint::Generate, at))
}

/// The Gemini ingress: the path, then the shared proxy stages.
pub(super) async fn run(
    env: &Env<'_>,
    conn: &mut Conn,
    scratch: &mut Scratch,
    head: &Head,
    ctx: &mut Ctx,
) -> Result<Outcome, GatewayError> {
    let (endpoint, mut at) = route(head.method, &conn.rbuf[head.path.clone()])?;
    at.model = head.path.start + at.model.start..head.path.start + at.model.end;
    super::proxy(env, conn, scratch, head, ctx, endpoint, Some(at)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_and_streaming_come_from_the_path() {
        let p = b"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
        let (e, at) = route(Method::Post, p).unwrap();
        assert_eq!(e, Endpoint::Generate);
        assert!(at.stream);
        assert_eq!(&p[at.model], b"gemini-2.5-flash");
        let p = b"/v1/models/my:alias:generateContent";
        let (_, at) = route(Method::Post, p).unwrap();
        assert_eq!((&p[at.model.clone()], at.stream), (&b"my:alias"[..], false));
        assert!(is_own(b"/v1beta/models"));
        assert!(!is_own(b"/v1/models/gpt-4o") && !is_own(b"/v1/chat/completions"));
        let e = route(Method::Post, b"/v1beta/models/m:countTokens").unwrap_err();
        assert_eq!(e.kind, Kind::NotFound);
        let e = route(Method::Get, b"/v1beta/models/m:generateContent").unwrap_err();
        assert_eq!(e.kind, Kind::MethodNotAllowed);
        assert_eq!(
            route(Method::Post, b"/v1beta/models/:generateContent")
                .unwrap_err()
                .kind,
            Kind::BadRequest
        );
    }
}
