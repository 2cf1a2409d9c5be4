//! The gateway's guardrail webhook, answered by words in the texts: `POST /guardrail` (or
//! `/guardrail/<directives>`, the same as a `/mock/<directives>/guardrail` prefix) with
//! `{"policy","phase":"request"|"response","model","key","request_id","texts":[..]}`.
//!
//! The verdict, first that applies: a text with `FAILME` gets a 500 with an OpenAI-shaped
//! error; `BLOCKME`, `{"action":"block","reason":..}`; `REDACTME`, `{"action":"redact",
//! "texts":[..]}` with every `REDACTME` replaced by `[redacted]` (one text per text); else
//! `{"action":"allow"}`. A text with `SLOWME` delays the answer 2 s (`latency_ms` delays any
//! answer). A body that is not such a call gets a 400. Calls are counted as API `guardrail`
//! and recorded as the last request, like any other.

use std::time::Duration;

use serde::Deserialize;

use super::errors;
use super::responses::json_str;
use super::routes::Family;

/// How long `SLOWME` delays the answer.
pub(crate) const SLOW: Duration = Duration::from_secs(2);

/// One webhook call; only `texts` decides the answer, the rest is checked for shape.
#[derive(Deserialize, Debug)]
#[allow(dead_code)] // the members besides `texts` are only checked for their shape
pub(crate) struct Call {
    policy: String,
    phase: Phase,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    texts: Vec<String>,
}

#[derive(Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Phase {
    Request,
    Response,
}

impl Call {
    pub fn parse(body: &[u8]) -> Result<Call, String> {
        serde_json::from_slice(body).map_err(|e| format!("mock: not a guardrail call: {e}"))
    }

    fn any(&self, word: &str) -> bool {
        self.texts.iter().any(|t| t.contains(word))
    }

    /// Whether the answer waits [`SLOW`] first.
    pub fn slow(&self) -> bool {
        self.any("SLOWME")
    }

    /// Writes the answer into `out` (cleared first); its status.
    pub fn answer(&self, out: &mut Vec<u8>) -> u16 {
        out.clear();
        if self.any("FAILME") {
            errors::body(
                out,
                Family::OpenAi,
                500,
                "mock: guardrail failure requested",
            );
            return 500;
        }
        if self.any("BLOCKME") {
            out.extend_from_slice(b"{\"action\":\"block\",\"reason\":\"mock: BLOCKME found\"}");
        } else if self.any("REDACTME") {
            out.extend_from_slice(b"{\"action\":\"redact\",\"texts\":[");
            for (i, t) in self.texts.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, &t.replace("REDACTME", "[redacted]"));
            }
            out.extend_from_slice(b"]}");
        } else {
            out.extend_from_slice(b"{\"action\":\"allow\"}");
        }
        200
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn answer(texts: &[&str]) -> (u16, Value) {
        let body = json!({"policy":"p","phase":"request","model":"m","key":null,
            "request_id":"r","texts":texts});
        let call = Call::parse(body.to_string().as_bytes()).unwrap();
        let mut out = b"junk".to_vec();
        let status = call.answer(&mut out);
        (status, serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn verdicts() {
        assert_eq!(answer(&["hello"]), (200, json!({"action":"allow"})));
        assert_eq!(answer(&[]), (200, json!({"action":"allow"})));
        let (s, v) = answer(&["ok", "please BLOCKME now", "REDACTME"]);
        assert_eq!((s, v["action"].as_str()), (200, Some("block")));
        assert!(v["reason"].as_str().unwrap().contains("BLOCKME"));
        let (s, v) = answer(&["a REDACTME b REDACTME", "clean \"q\""]);
        assert_eq!(s, 200);
        assert_eq!(
            v,
            json!({"action":"redact","texts":["a [redacted] b [redacted]","clean \"q\""]})
        );
        let (s, v) = answer(&["BLOCKME FAILME"]);
        assert_eq!(s, 500);
        assert!(v["error"]["message"].is_string());
    }

    #[test]
    fn shapes() {
        let ok = |b: &str| Call::parse(b.as_bytes()).is_ok();
        assert!(ok(
            r#"{"policy":"p","phase":"response","texts":["x"],"key":"k"}"#
        ));
        assert!(!ok(r#"{"policy":"p","phase":"later","texts":[]}"#));
        assert!(!ok(r#"{"policy":"p","phase":"request"}"#));
        assert!(!ok(r#"{"policy":"p","phase":"request","texts":[1]}"#));
        assert!(!ok("{nope"));
        let slow = Call::parse(br#"{"policy":"p","phase":"request","texts":["a","SLOWME"]}"#);
        assert!(slow.unwrap().slow());
    }
}
