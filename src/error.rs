//! The one error type of the request path.
//!
//! Every failure a client can see is a [`GatewayError`]: a [`Kind`] (which fixes the HTTP status,
//! the OpenAI `error.type`/`code`, the metric label and whether a retry could help) plus a
//! human message. Errors are rendered once, by the ingress, in its own shape (OpenAI's or
//! Anthropic's error JSON); they are logged once, in the access log, where the request settles.
//! Messages never contain secrets. Upstream failures are classified into these kinds by the
//! provider adapters, so a client sees the same category whatever protocol the upstream spoke.

use crate::json;

/// The closed set of error categories. Add a case here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    BadRequest,
    Unauthorized,
    Forbidden,
    ModelNotFound,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    HeaderTooLarge,
    UpstreamConnect,
    UpstreamServer,
    UpstreamProtocol,
    UpstreamTimeout,
    /// The provider rejected the request itself (its 400/404/422): the client's to fix.
    UpstreamBadRequest,
    /// The prompt does not fit the upstream model's context window.
    UpstreamContextWindow,
    /// The provider refused the content.
    UpstreamContentPolicy,
    /// The provider rate-limited the gateway (429); `retry_after_s` says for how long.
    UpstreamRateLimited,
    /// The provider rejected the gateway's credentials for it (its 401/403).
    UpstreamAuth,
    /// Every target of the alias (and its fallbacks) is down or benched: nothing was tried.
    NoHealthyTarget,
    ClientDisconnected,
}

impl Kind {
    pub const ALL: [Kind; 20] = [
        Kind::BadRequest,
        Kind::Unauthorized,
        Kind::Forbidden,
        Kind::ModelNotFound,
        Kind::NotFound,
        Kind::MethodNotAllowed,
        Kind::RequestTimeout,
        Kind::PayloadTooLarge,
        Kind::HeaderTooLarge,
        Kind::UpstreamConnect,
        Kind::UpstreamServer,
        Kind::UpstreamProtocol,
        Kind::UpstreamTimeout,
        Kind::UpstreamBadRequest,
        Kind::UpstreamContextWindow,
        Kind::UpstreamContentPolicy,
        Kind::UpstreamRateLimited,
        Kind::UpstreamAuth,
        Kind::NoHealthyTarget,
        Kind::ClientDisconnected,
    ];

    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest => 400,
            Kind::Unauthorized => 401,
            Kind::Forbidden => 403,
            Kind::ModelNotFound | Kind::NotFound => 404,
            Kind::MethodNotAllowed => 405,
            Kind::RequestTimeout => 408,
            Kind::PayloadTooLarge => 413,
            Kind::HeaderTooLarge => 431,
            Kind::UpstreamBadRequest
            | Kind::UpstreamContextWindow
            | Kind::UpstreamContentPolicy => 400,
            Kind::UpstreamRateLimited => 429,
            Kind::UpstreamConnect
            | Kind::UpstreamServer
            | Kind::UpstreamProtocol
            | Kind::UpstreamAuth => 502,
            Kind::UpstreamTimeout => 504,
            Kind::NoHealthyTarget => 503,
            // nginx's convention: the client went away, nothing was sent.
            Kind::ClientDisconnected => 499,
        }
    }

    /// OpenAI's `error.type`.
    pub fn openai_type(self) -> &'static str {
        match self {
            Kind::Unauthorized => "authentication_error",
            Kind::Forbidden => "permission_error",
            Kind::BadRequest
            | Kind::ModelNotFound
            | Kind::NotFound
            | Kind::MethodNotAllowed
            | Kind::RequestTimeout
            | Kind::PayloadTooLarge
            | Kind::HeaderTooLarge
            | Kind::UpstreamBadRequest
            | Kind::UpstreamContextWindow
            | Kind::UpstreamContentPolicy => "invalid_request_error",
            Kind::UpstreamRateLimited => "rate_limit_error",
            Kind::UpstreamConnect
            | Kind::UpstreamServer
            | Kind::UpstreamProtocol
            | Kind::UpstreamTimeout
            | Kind::UpstreamAuth
            | Kind::NoHealthyTarget => "upstream_error",
            Kind::ClientDisconnected => "server_error",
        }
    }

    /// OpenAI's `error.code`, and the low-cardinality metric/log label.
    pub fn code(self) -> &'static str {
        match self {
            Kind::BadRequest => "invalid_request",
            Kind::Unauthorized => "invalid_api_key",
            Kind::Forbidden => "model_not_allowed",
            Kind::ModelNotFound => "model_not_found",
            Kind::NotFound => "unknown_url",
            Kind::MethodNotAllowed => "method_not_allowed",
            Kind::RequestTimeout => "request_timeout",
            Kind::PayloadTooLarge => "request_too_large",
            Kind::HeaderTooLarge => "headers_too_large",
            Kind::UpstreamConnect => "upstream_connect_failed",
            Kind::UpstreamServer => "upstream_server_error",
            Kind::UpstreamProtocol => "upstream_protocol_error",
            Kind::UpstreamTimeout => "upstream_timeout",
            Kind::UpstreamBadRequest => "upstream_bad_request",
            Kind::UpstreamContextWindow => "context_length_exceeded",
            Kind::UpstreamContentPolicy => "content_policy_violation",
            Kind::UpstreamRateLimited => "rate_limit_exceeded",
            Kind::UpstreamAuth => "upstream_auth_failed",
            Kind::NoHealthyTarget => "no_healthy_target",
            Kind::ClientDisconnected => "client_disconnected",
        }
    }

    /// Anthropic's `error.type`, for the Anthropic ingress.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            Kind::Unauthorized => "authentication_error",
            Kind::Forbidden => "permission_error",
            Kind::ModelNotFound | Kind::NotFound => "not_found_error",
            Kind::PayloadTooLarge => "request_too_large",
            Kind::UpstreamRateLimited => "rate_limit_error",
            Kind::UpstreamTimeout | Kind::RequestTimeout => "timeout_error",
            Kind::BadRequest
            | Kind::MethodNotAllowed
            | Kind::HeaderTooLarge
            | Kind::UpstreamBadRequest
            | Kind::UpstreamContextWindow
            | Kind::UpstreamContentPolicy => "invalid_request_error",
            Kind::UpstreamConnect
            | Kind::UpstreamServer
            | Kind::UpstreamProtocol
            | Kind::UpstreamAuth
            | Kind::NoHealthyTarget
            | Kind::ClientDisconnected => "api_error",
        }
    }

    /// Whether another attempt (another connection, target or provider) could succeed.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Kind::UpstreamConnect
                | Kind::UpstreamServer
                | Kind::UpstreamTimeout
                | Kind::UpstreamProtocol
                | Kind::UpstreamRateLimited
                | Kind::UpstreamAuth
        )
    }

    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            Kind::UpstreamConnect
                | Kind::UpstreamServer
                | Kind::UpstreamProtocol
                | Kind::UpstreamTimeout
                | Kind::UpstreamBadRequest
                | Kind::UpstreamContextWindow
                | Kind::UpstreamContentPolicy
                | Kind::UpstreamRateLimited
                | Kind::UpstreamAuth
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct GatewayError {
    pub kind: Kind,
    pub message: String,
    /// Seconds the client should wait before retrying (sent as `Retry-After`).
    pub retry_after_s: Option<u64>,
}

impl GatewayError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }

    pub fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after_s = seconds;
        self
    }

    /// `{"type":"error","error":{"type":…,"message":…}}`
    pub fn write_anthropic_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
        out.extend_from_slice(self.kind.anthropic_type().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        json::push_str(out, &self.message);
        out.extend_from_slice(b"}}");
    }

    /// `{"error":{"message":…,"type":…,"param":null,"code":…}}`
    pub fn write_openai_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"error\":{\"message\":");
        json::push_str(out, &self.message);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(self.kind.openai_type().as_bytes());
        out.extend_from_slice(b"\",\"param\":null,\"code\":\"");
        out.extend_from_slice(self.kind.code().as_bytes());
        out.extend_from_slice(b"\"}}");
    }
}

pub type Result<T> = std::result::Result<T, GatewayError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_openai_shaped_json() {
        let mut out = Vec::new();
        GatewayError::new(Kind::ModelNotFound, "no model \"x\"").write_openai_body(&mut out);
        let v: simd_json::OwnedValue = simd_json::to_owned_value(&mut out.clone()).unwrap();
        use simd_json::prelude::*;
        assert_eq!(v["error"]["code"].as_str(), Some("model_not_found"));
        assert_eq!(v["error"]["message"].as_str(), Some("no model \"x\""));
        assert_eq!(v["error"]["type"].as_str(), Some("invalid_request_error"));
    }

    #[test]
    fn every_kind_has_distinct_code() {
        let mut codes: Vec<_> = Kind::ALL.iter().map(|k| k.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), Kind::ALL.len());
    }
}
