//! Error bodies in every protocol's own shape, for answers that fail before they start
//! ([`body`]: OpenAI's `{"error":{..}}`, Anthropic's `{"type":"error",..}`, Cohere's
//! `{"id","message"}`, Google's `{"error":{"code","message","status"}}`, Bedrock's
//! `{"message"}` with an `x-amzn-errortype` header) and for streams that fail midway
//! ([`in_stream`], the `error_after` directive).

use super::responses::{Api, Sse, json_str};
use super::routes::Family;
use super::{bedrock, gemini, responses_api};

/// Writes `family`'s error body for `status` into `out` (cleared first); returns the extra
/// header it needs.
pub(crate) fn body(
    out: &mut Vec<u8>,
    family: Family,
    status: u16,
    msg: &str,
) -> Option<(&'static str, &'static str)> {
    out.clear();
    match family {
        Family::OpenAi => openai_or_anthropic(out, false, status, msg),
        Family::Anthropic => openai_or_anthropic(out, true, status, msg),
        Family::Cohere => cohere(out, msg),
        Family::Google => gemini::error(out, status, msg),
        Family::Bedrock => {
            bedrock::error(out, msg);
            return Some(("x-amzn-errortype", bedrock::error_type(status)));
        }
    }
    None
}

/// `error_after`: the protocol's in-stream error for `status`, a stream's last event.
pub(crate) fn in_stream(sse: &Sse, out: &mut Vec<u8>, status: u16) {
    let msg = format!("mock: stream error {status} requested");
    match sse.api {
        Api::Bedrock => bedrock::exception(out, status, &msg),
        Api::Responses => responses_api::error_event(out, sse, status, &msg),
        Api::Gemini => {
            out.extend_from_slice(b"data: ");
            gemini::error(out, status, &msg);
            out.extend_from_slice(b"\n\n");
        }
        Api::Messages => {
            out.extend_from_slice(b"event: error\ndata: ");
            openai_or_anthropic(out, true, status, &msg);
            out.extend_from_slice(b"\n\n");
        }
        Api::Cohere => {
            out.extend_from_slice(
                b"event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{\"error\":",
            );
            json_str(out, &msg);
            out.extend_from_slice(b"}}\n\n");
        }
        Api::Chat | Api::Completion => {
            out.extend_from_slice(b"data: ");
            openai_or_anthropic(out, false, status, &msg);
            out.extend_from_slice(b"\n\n");
        }
    }
}

/// Cohere's error body: `{"id":…,"message":…}`.
fn cohere(out: &mut Vec<u8>, message: &str) {
    out.extend_from_slice(b"{\"id\":\"mock-error\",\"message\":");
    json_str(out, message);
    out.push(b'}');
}

/// An error body: Anthropic-shaped for `Api::Messages` (`anthropic`), OpenAI-shaped otherwise.
pub(crate) fn openai_or_anthropic(out: &mut Vec<u8>, anthropic: bool, status: u16, message: &str) {
    if anthropic {
        let kind = match status {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            500..=599 => "api_error",
            _ => "invalid_request_error",
        };
        out.extend_from_slice(b"{\"type\":\"error\",\"error\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        json_str(out, message);
        out.extend_from_slice(b"}}");
    } else {
        let (kind, code) = match status {
            401 => ("authentication_error", "\"invalid_api_key\""),
            403 => ("permission_error", "null"),
            429 => ("rate_limit_error", "\"rate_limit_exceeded\""),
            500..=599 => ("server_error", "null"),
            _ => ("invalid_request_error", "null"),
        };
        out.extend_from_slice(b"{\"error\":{\"message\":");
        json_str(out, message);
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"param\":null,\"code\":");
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"}}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn json(family: Family, status: u16) -> (Value, Option<(&'static str, &'static str)>) {
        let mut out = b"stale".to_vec();
        let extra = body(&mut out, family, status, "m");
        (serde_json::from_slice(&out).unwrap(), extra)
    }

    #[test]
    fn each_family_has_its_shape() {
        assert_eq!(
            json(Family::OpenAi, 429).0["error"]["code"],
            "rate_limit_exceeded"
        );
        assert_eq!(
            json(Family::Anthropic, 529).0["error"]["type"],
            "overloaded_error"
        );
        assert_eq!(json(Family::Cohere, 400).0["message"], "m");
        assert_eq!(
            json(Family::Google, 503).0["error"]["status"],
            "UNAVAILABLE"
        );
        let (v, extra) = json(Family::Bedrock, 429);
        assert_eq!(v["message"], "m");
        assert_eq!(extra, Some(("x-amzn-errortype", "ThrottlingException")));
    }
}
