//! The webhook check: one HTTP call per phase to the policy's URL, on the shard's own pooled
//! client, within the policy's `timeout_ms` for the whole exchange (connect, send, answer).
//!
//! The gateway sends
//! `{"policy", "phase", "model", "key", "request_id", "texts": [...]}` and reads back
//! `{"action": "allow"}`, `{"action": "block", "reason": "..."}` or
//! `{"action": "redact", "texts": [...]}` (one replacement per text sent). Anything else — a
//! non-2xx status, a body that is not that, a timeout, a refused connection — is a failure,
//! which the policy's `on_error` turns into a pass or a block.

use super::Phase;
use crate::config::guardrail::Webhook;
use crate::pipeline::Env;

/// What the webhook is told.
pub struct Call<'a> {
    pub policy: &'a str,
    pub phase: Phase,
    pub model: &'a str,
    pub key: Option<&'a str>,
    pub request_id: &'a str,
    pub texts: &'a [String],
}

/// What the webhook decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Block(Option<String>),
    Redact(Vec<String>),
}

/// Largest webhook answer read.
const MAX_ANSWER: usize = 4 << 20;

impl Call<'_> {
    fn body(&self) -> Vec<u8> {
        use crate::json::push_str;
        let mut out =
            Vec::with_capacity(128 + self.texts.iter().map(|t| t.len() + 4).sum::<usize>());
        out.extend_from_slice(b"{\"policy\":");
        push_str(&mut out, self.policy);
        out.extend_from_slice(b",\"phase\":");
        push_str(&mut out, self.phase.label());
        out.extend_from_slice(b",\"model\":");
        push_str(&mut out, self.model);
        out.extend_from_slice(b",\"key\":");
        match self.key {
            Some(k) => push_str(&mut out, k),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"request_id\":");
        push_str(&mut out, self.request_id);
        out.extend_from_slice(b",\"texts\":[");
        for (i, t) in self.texts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(&mut out, t);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// Makes the call; `Err` says why it failed.
pub async fn call(env: &Env<'_>, hook: &Webhook, call: &Call<'_>) -> Result<Answer, String> {
    let body = call.body();
    let idx = hook.provider.origin.ok_or("no origin")?;
    let origin = &env.snapshot.origins[idx];
    let mut request = Vec::with_capacity(body.len() + 160);
    request.extend_from_slice(b"POST ");
    request.extend_from_slice(hook.path.as_bytes());
    request.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    request.extend_from_slice(origin.authority.as_bytes());
    request.extend_from_slice(
        b"\r\nuser-agent: shardgate\r\ncontent-type: application/json\r\ncontent-length: ",
    );
    request.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    request.extend_from_slice(b"\r\n\r\n");
    request.extend_from_slice(&body);
    let exchange = async {
        let mut resp = env
            .upstream
            .send(
                &hook.provider,
                origin,
                &hook.provider.timeouts,
                &mut request,
            )
            .await
            .map_err(|e| e.message)?;
        let mut answer = Vec::new();
        resp.read_to_end(&mut answer, MAX_ANSWER)
            .await
            .map_err(|e| format!("broken answer: {e}"))?;
        let status = resp.status;
        env.upstream.release(resp, origin);
        if !(200..300).contains(&status) {
            return Err(format!("the webhook answered HTTP {status}"));
        }
        parse(&answer, call.texts.len())
    };
    match monoio::time::timeout(hook.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the webhook did not answer within {} ms",
            hook.timeout.as_millis()
        )),
    }
}

/// Reads a webhook's answer to a call of `sent` texts.
fn parse(body: &[u8], sent: usize) -> Result<Answer, String> {
    #[derive(serde::Deserialize)]
    struct Raw {
        action: String,
        reason: Option<String>,
        texts: Option<Vec<String>>,
    }
    let raw: Raw = serde_json::from_slice(body)
        .map_err(|e| format!("the webhook's answer is not valid: {e}"))?;
    match raw.action.as_str() {
        "allow" => Ok(Answer::Allow),
        "block" => Ok(Answer::Block(raw.reason)),
        "redact" => match raw.texts {
            Some(t) if t.len() == sent => Ok(Answer::Redact(t)),
            Some(t) => Err(format!(
                "the webhook redacted {} texts of the {sent} sent",
                t.len()
            )),
            None => Err("the webhook's redact answer has no `texts`".into()),
        },
        other => Err(format!("the webhook answered an unknown action {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_and_bad_ones_are_failures() {
        assert_eq!(parse(br#"{"action":"allow"}"#, 2), Ok(Answer::Allow));
        assert_eq!(
            parse(br#"{"action":"block","reason":"no"}"#, 1),
            Ok(Answer::Block(Some("no".into())))
        );
        assert_eq!(
            parse(br#"{"action":"redact","texts":["a","b"]}"#, 2),
            Ok(Answer::Redact(vec!["a".into(), "b".into()]))
        );
        assert!(parse(br#"{"action":"redact","texts":["a"]}"#, 2).is_err());
        assert!(parse(br#"{"action":"maybe"}"#, 2).is_err());
        assert!(parse(b"<html>", 2).is_err());
    }

    #[test]
    fn the_call_names_everything_but_secrets() {
        let texts = vec!["a\"b".to_owned()];
        let call = Call {
            policy: "review",
            phase: Phase::Request,
            model: "gpt",
            key: None,
            request_id: "r1",
            texts: &texts,
        };
        assert_eq!(
            String::from_utf8(call.body()).unwrap(),
            r#"{"policy":"review","phase":"request","model":"gpt","key":null,"request_id":"r1","texts":["a\"b"]}"#
        );
    }
}
