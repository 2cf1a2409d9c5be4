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
    /// The upstream's answer (a body, one stream event, its tool-call arguments) passed the
    /// gateway's bound for it.
    UpstreamTooLarge,
    /// The shard is at its in-flight cap: the client should retry shortly.
    Overloaded,
    ClientDisconnected,
    /// A limit of the gateway's own (key, team, alias, end user) refused the request.
    RateLimited,
    /// A hard budget would be exceeded; `retry_after_s` says when its period resets.
    BudgetExceeded,
    /// A budget applies but the target's price is unknown, and `on_unknown_price: reject`.
    PriceUnknown,
    /// A guardrail policy refused the request or its answer (the policy names its status).
    GuardrailBlocked,
}

impl Kind {
    pub const ALL: [Kind; 26] = [
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
        Kind::UpstreamTooLarge,
        Kind::Overloaded,
        Kind::ClientDisconnected,
        Kind::RateLimited,
        Kind::BudgetExceeded,
        Kind::PriceUnknown,
        Kind::GuardrailBlocked,
    ];

    pub fn status(self) -> u16 {
        match self {
            Kind::BadRequest | Kind::GuardrailBlocked => 400,
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
            Kind::UpstreamRateLimited | Kind::RateLimited | Kind::BudgetExceeded => 429,
            Kind::PriceUnknown => 403,
            Kind::UpstreamConnect
            | Kind::UpstreamServer
            | Kind::UpstreamProtocol
            | Kind::UpstreamTooLarge
            | Kind::UpstreamAuth => 502,
            Kind::Overloaded => 503,
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
            Kind::Forbidden | Kind::PriceUnknown => "permission_error",
            Kind::RateLimited => "requests",
            Kind::BudgetExceeded => "budget_exceeded",
            Kind::BadRequest
            | Kind::GuardrailBlocked
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
            | Kind::UpstreamTooLarge
            | Kind::NoHealthyTarget => "upstream_error",
            Kind::Overloaded | Kind::ClientDisconnected => "server_error",
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
            Kind::UpstreamTooLarge => "upstream_response_too_large",
            Kind::Overloaded => "overloaded",
            Kind::ClientDisconnected => "client_disconnected",
            Kind::RateLimited => "rate_limit_exceeded",
            Kind::BudgetExceeded => "budget_exceeded",
            Kind::PriceUnknown => "price_unknown",
            Kind::GuardrailBlocked => "guardrail_blocked",
        }
    }

    /// The metric and log label: the code, except where two kinds share one (a limit of the
    /// gateway's own and an upstream's 429 are both `rate_limit_exceeded` to clients).
    pub fn label(self) -> &'static str {
        match self {
            Kind::RateLimited => "gateway_rate_limited",
            k => k.code(),
        }
    }

    /// Anthropic's `error.type`, for the Anthropic ingress.
    pub fn anthropic_type(self) -> &'static str {
        match self {
            Kind::Unauthorized => "authentication_error",
            Kind::Forbidden | Kind::PriceUnknown => "permission_error",
            Kind::ModelNotFound | Kind::NotFound => "not_found_error",
            Kind::RateLimited | Kind::BudgetExceeded => "rate_limit_error",
            Kind::PayloadTooLarge => "request_too_large",
            Kind::UpstreamRateLimited => "rate_limit_error",
            Kind::UpstreamTimeout | Kind::RequestTimeout => "timeout_error",
            Kind::Overloaded => "overloaded_error",
            Kind::BadRequest
            | Kind::GuardrailBlocked
            | Kind::MethodNotAllowed
            | Kind::HeaderTooLarge
            | Kind::UpstreamBadRequest
            | Kind::UpstreamContextWindow
            | Kind::UpstreamContentPolicy => "invalid_request_error",
            Kind::UpstreamConnect
            | Kind::UpstreamServer
            | Kind::UpstreamProtocol
            | Kind::UpstreamAuth
            | Kind::UpstreamTooLarge
            | Kind::NoHealthyTarget
            | Kind::ClientDisconnected => "api_error",
        }
    }

    /// The kind of an upstream's HTTP error status, before its protocol's adapter refines it
    /// (a 400 that is really a context-window or content-policy error). Upstream statuses are
    /// mapped here and nowhere else.
    pub fn from_upstream_status(status: u16) -> Kind {
        match status {
            401 | 403 => Kind::UpstreamAuth,
            429 => Kind::UpstreamRateLimited,
            408 | 504 => Kind::UpstreamTimeout,
            400..=499 => Kind::UpstreamBadRequest,
            500..=599 => Kind::UpstreamServer,
            _ => Kind::UpstreamProtocol,
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
                | Kind::UpstreamTooLarge
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
    /// The same wait to the millisecond, where the gateway knows it (`retry-after-ms`).
    pub retry_after_ms: Option<u64>,
    /// The HTTP status when it is not the kind's own (a guardrail's configured `status`).
    pub status: Option<u16>,
}

impl GatewayError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        GatewayError {
            kind,
            message: message.into(),
            retry_after_s: None,
            retry_after_ms: None,
            status: None,
        }
    }

    /// The HTTP status the client gets.
    pub fn status(&self) -> u16 {
        self.status.unwrap_or(self.kind.status())
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

/// Longest provider message passed on to a client.
const MAX_UPSTREAM_MESSAGE: usize = 1024;

/// A provider's error message as a client may see it: `<protocol>: <message>`, trimmed, cut
/// at 1 KiB, with anything that looks like a credential masked (OpenAI quotes part of the key
/// on a 401; the gateway's upstream key must not reach a client, even masked). Without a
/// message: `<protocol>: HTTP <status>`, or `<protocol>: stream error` mid-stream.
pub fn upstream_message(protocol: &str, message: Option<&str>, status: Option<u16>) -> String {
    match (message.map(str::trim).filter(|m| !m.is_empty()), status) {
        (Some(m), _) => {
            let mut end = m.len().min(MAX_UPSTREAM_MESSAGE);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            format!("{protocol}: {}", redact(&m[..end]))
        }
        (None, Some(s)) => format!("{protocol}: HTTP {s}"),
        (None, None) => format!("{protocol}: stream error"),
    }
}

/// Masks words that look like API keys or bearer tokens.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core = word.trim_end_matches(['.', ',', ';', ':', ')', '"', '\'']);
        let keyish = ["sk-", "sk_", "gsk_", "xai-", "Bearer"]
            .iter()
            .any(|p| core.starts_with(p))
            || core.contains("***");
        if keyish {
            out.push_str("[redacted]");
            out.push_str(&word[core.len()..]);
        } else {
            out.push_str(word);
        }
    }
    out
}

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
    fn upstream_messages_are_bounded_and_masked() {
        let m = upstream_message(
            "openai",
            Some(" Incorrect API key provided: sk-abc***xyz. "),
            Some(401),
        );
        assert_eq!(m, "openai: Incorrect API key provided: [redacted].");
        assert_eq!(
            upstream_message("anthropic", None, Some(529)),
            "anthropic: HTTP 529"
        );
        assert_eq!(upstream_message("x", Some(""), None), "x: stream error");
        let long = "é".repeat(2000);
        assert!(upstream_message("x", Some(&long), None).len() <= 3 + MAX_UPSTREAM_MESSAGE);
        assert_eq!(Kind::from_upstream_status(422), Kind::UpstreamBadRequest);
        assert_eq!(Kind::from_upstream_status(529), Kind::UpstreamServer);
        assert_eq!(Kind::from_upstream_status(302), Kind::UpstreamProtocol);
    }

    #[test]
    fn every_kind_has_distinct_label() {
        let mut labels: Vec<_> = Kind::ALL.iter().map(|k| k.label()).collect();
        labels.sort();
        labels.dedup();
        assert_eq!(labels.len(), Kind::ALL.len());
        // Clients see one code for both 429s (the SDKs' retry logic keys on it).
        assert_eq!(Kind::RateLimited.code(), Kind::UpstreamRateLimited.code());
    }
}
