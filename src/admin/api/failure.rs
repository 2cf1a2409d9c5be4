//! Why an admin API call was refused, rendered as OpenAI's error JSON:
//! `{"error": {"message", "type", "param", "code"}}`.
//!
//! Messages name the field and say what is wrong; they never echo a secret (a key given by its
//! secret is described, not quoted).

use serde_json::json;

use super::Reply;
use crate::store::{Fault, StoreError};

#[derive(Debug)]
pub(super) struct Failure {
    pub status: u16,
    kind: &'static str,
    pub code: &'static str,
    pub param: Option<String>,
    pub message: String,
}

impl Failure {
    fn new(
        status: u16,
        kind: &'static str,
        code: &'static str,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Failure {
        Failure {
            status,
            kind,
            code,
            param: param.map(str::to_owned),
            message: message.into(),
        }
    }

    /// 400: the request is wrong.
    pub fn invalid(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Failure::new(400, "invalid_request_error", code, param, message)
    }

    /// 400 `invalid_field`: a field has the wrong type or value, or is missing.
    pub fn field(param: &str, message: impl Into<String>) -> Self {
        Failure::invalid("invalid_field", Some(param), message)
    }

    pub fn required(param: &str) -> Self {
        Failure::field(param, format!("{param} is required"))
    }

    /// 404: the key or team named does not exist.
    pub fn not_found(code: &'static str, param: Option<&str>, message: impl Into<String>) -> Self {
        Failure::new(404, "not_found_error", code, param, message)
    }

    /// 409: an alias or id already taken.
    pub fn conflict(code: &'static str, param: &str, message: impl Into<String>) -> Self {
        Failure::new(409, "invalid_request_error", code, Some(param), message)
    }

    /// 400 `read_only_key`: `id` is a key from the YAML config.
    pub fn read_only(param: &str, id: &str) -> Self {
        let message = format!("key {id} comes from the config file; change it there");
        Failure::invalid("read_only_key", Some(param), message)
    }

    pub fn method(path: &str, allowed: &str, given: &str) -> Self {
        let message = format!("{path} takes {allowed}, not {given}");
        Failure::new(
            405,
            "invalid_request_error",
            "method_not_allowed",
            None,
            message,
        )
    }

    /// Any refusal of the admin listener (master key, method, path, size), in the same shape.
    pub fn other(status: u16, kind: &'static str, code: &'static str, message: String) -> Self {
        Failure::new(status, kind, code, None, message)
    }

    pub fn reply(&self) -> Reply {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        Reply {
            status: self.status,
            body: serde_json::to_vec(&body).expect("JSON values serialize"),
            content_type: "application/json",
            changed: false,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e.fault {
            // The handlers check first, so these mean another process wrote meanwhile.
            Fault::Constraint => {
                Failure::new(409, "invalid_request_error", "conflict", None, e.message)
            }
            Fault::NotFound => Failure::new(404, "not_found_error", "not_found", None, e.message),
            Fault::Unavailable => Failure::new(
                503,
                "server_error",
                "store_unavailable",
                None,
                format!(
                    "the store is unreachable, nothing was changed; requests are still served \
                     with the keys known before: {e}"
                ),
            ),
            _ => Failure::new(
                500,
                "server_error",
                "store_error",
                None,
                format!("the store failed: {e}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_is_a_503_that_says_nothing_changed() {
        let e = StoreError::new(Fault::Unavailable, "PostgreSQL is unreachable");
        let r = Failure::from(e).reply();
        assert_eq!(r.status, 503);
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"]["code"], "store_unavailable");
        assert_eq!(body["error"]["type"], "server_error");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("nothing was changed") && msg.contains("unreachable"),
            "{msg}"
        );
    }
}
