//! Gemini `generateContent` answers, for Google AI (`/v1beta/models/{m}:...`) and Vertex AI
//! (`/v1/projects/.../publishers/google/models/{m}:...`) alike: the whole
//! `GenerateContentResponse`, and the `streamGenerateContent?alt=sse` chunks — one per
//! reasoning or text piece, each function call whole in its own chunk, and a last chunk with
//! the finish reason and usage (no sentinel) — and Google's error body.
//!
//! Usage: `promptTokenCount` includes the cached share (`cachedContentTokenCount`);
//! `candidatesTokenCount` leaves out the reasoning (`thoughtsTokenCount`); the total adds them.

use super::reply::{Reply, Step};
use super::responses::{Meta, json_str, num, text};
use super::tools::{THINKING, THINKING_TEXT};

/// The `status` name of Google's error body for an HTTP status.
pub(crate) fn status_name(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        402..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

/// Google's error body: `{"error":{"code","message","status"}}`.
pub(crate) fn error(out: &mut Vec<u8>, status: u16, message: &str) {
    out.extend_from_slice(b"{\"error\":{\"code\":");
    num(out, status as u64);
    out.extend_from_slice(b",\"message\":");
    json_str(out, message);
    out.extend_from_slice(b",\"status\":\"");
    out.extend_from_slice(status_name(status).as_bytes());
    out.extend_from_slice(b"\"}}");
}

fn usage(out: &mut Vec<u8>, m: &Meta) {
    let prompt = m.prompt_tokens.saturating_add(m.cached_tokens);
    let candidates = m.completion_tokens.saturating_sub(m.reasoning_tokens);
    out.extend_from_slice(b"\"usageMetadata\":{\"promptTokenCount\":");
    num(out, prompt);
    out.extend_from_slice(b",\"candidatesTokenCount\":");
    num(out, candidates);
    out.extend_from_slice(b",\"totalTokenCount\":");
    num(out, prompt.saturating_add(m.completion_tokens));
    if m.cached_tokens > 0 {
        out.extend_from_slice(b",\"cachedContentTokenCount\":");
        num(out, m.cached_tokens);
    }
    if m.reasoning_tokens > 0 {
        out.extend_from_slice(b",\"thoughtsTokenCount\":");
        num(out, m.reasoning_tokens);
    }
    out.push(b'}');
}

/// `"modelVersion":...,"responseId":...`.
fn trailer(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(b"\"modelVersion\":");
    out.extend_from_slice(&m.model);
    out.extend_from_slice(b",\"responseId\":\"mock-");
    num(out, m.id);
    out.push(b'"');
}

fn function_call(out: &mut Vec<u8>, reply: &Reply, c: u8) {
    out.extend_from_slice(b"{\"functionCall\":{\"name\":");
    json_str(out, reply.tool_name(c));
    out.extend_from_slice(b",\"args\":");
    let a = reply.arguments(c);
    a.write(out, (0, a.len()), false);
    out.extend_from_slice(b"}}");
}

fn thought(out: &mut Vec<u8>, piece: &str) {
    out.extend_from_slice(b"{\"text\":");
    json_str(out, piece);
    out.extend_from_slice(b",\"thought\":true}");
}

/// A complete non-streaming answer.
pub(crate) fn body(out: &mut Vec<u8>, m: &Meta, reply: &Reply) {
    out.extend_from_slice(b"{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
    if reply.thinking {
        thought(out, THINKING_TEXT);
        out.push(b',');
    }
    if reply.calls == 0 {
        out.extend_from_slice(b"{\"text\":");
        text(out, reply);
        out.push(b'}');
    }
    for c in 0..reply.calls {
        if c > 0 {
            out.push(b',');
        }
        function_call(out, reply, c);
    }
    out.extend_from_slice(b"]},\"finishReason\":\"");
    out.extend_from_slice(reply.stop.gemini().as_bytes());
    out.extend_from_slice(b"\",\"index\":0}],");
    usage(out, m);
    out.push(b',');
    trailer(out, m);
    out.push(b'}');
}

/// Appends one `data:` chunk for `step`.
pub(crate) fn event(out: &mut Vec<u8>, m: &Meta, reply: &Reply, step: Step) {
    if step == Step::Malformed {
        out.extend_from_slice(b"data: {\"candidates\":[{\"content\":\n\n");
        return;
    }
    out.extend_from_slice(b"data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
    match step {
        Step::Thinking(i) => thought(out, THINKING[i as usize]),
        Step::Content(i) => super::responses::content_field(out, b"{\"text\":\"tok", i),
        Step::ToolStart(c) => function_call(out, reply, c),
        _ => out.extend_from_slice(b"{\"text\":\"\"}"),
    }
    if let Step::Content(_) = step {
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    if step == Step::Finish {
        out.extend_from_slice(b",\"finishReason\":\"");
        out.extend_from_slice(reply.stop.gemini().as_bytes());
        out.extend_from_slice(b"\",\"index\":0}],");
        usage(out, m);
    } else {
        out.extend_from_slice(b",\"index\":0}]");
    }
    out.push(b',');
    trailer(out, m);
    out.extend_from_slice(b"}\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::directives::Directives;
    use crate::mock::reply::Plan;
    use crate::mock::request::Body;
    use crate::mock::responses::Api;
    use serde_json::Value;

    fn reply(dirs: &str, body: &str) -> Reply {
        let mut d = Directives::default();
        d.apply_path_segment(dirs).unwrap();
        Reply::new(Api::Gemini, &d, &Body::parse(body.as_bytes()).unwrap())
    }

    fn meta(r: &Reply) -> Meta {
        let mut m = Meta::new(7, "gemini-2.0-flash", 400, r);
        m.report(30, None);
        m
    }

    #[test]
    fn whole_answer() {
        let r = reply("chunks=2,thinking", "{}");
        let mut out = Vec::new();
        body(&mut out, &meta(&r), &r);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let parts = &v["candidates"][0]["content"]["parts"];
        assert_eq!(parts[0]["thought"], true);
        assert_eq!(parts[1]["text"], "tok0 tok1 ");
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        let u = &v["usageMetadata"];
        assert_eq!(u["promptTokenCount"], 130);
        assert_eq!(u["cachedContentTokenCount"], 30);
        assert_eq!(u["candidatesTokenCount"], 2);
        assert_eq!(u["thoughtsTokenCount"], 3);
        assert_eq!(u["totalTokenCount"], 135);
        assert_eq!(v["modelVersion"], "gemini-2.0-flash");
        assert_eq!(v["responseId"], "mock-7");
    }

    #[test]
    fn tool_calls_and_stream() {
        let decl = r#"{"tools":[{"functionDeclarations":[{"name":"a"},{"name":"b"}]}]}"#;
        let r = reply("tools=2,stop_reason=max_tokens", decl);
        let mut out = Vec::new();
        body(&mut out, &meta(&r), &r);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let parts = &v["candidates"][0]["content"]["parts"];
        assert_eq!(parts[1]["functionCall"]["name"], "b");
        assert_eq!(parts[1]["functionCall"]["args"]["call"], 1);
        assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");

        let plan = Plan::new(Api::Gemini, &r, false, false);
        let chunks: Vec<Value> = plan
            .steps()
            .map(|s| {
                let mut out = Vec::new();
                event(&mut out, &meta(&r), &r, s);
                let text = String::from_utf8(out).unwrap();
                let data = text.strip_prefix("data: ").unwrap().strip_suffix("\n\n");
                serde_json::from_str(data.unwrap()).unwrap()
            })
            .collect();
        assert_eq!(chunks.len(), 3);
        assert_eq!(
            chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"],
            "a"
        );
        assert!(chunks[1]["usageMetadata"].is_null());
        assert_eq!(chunks[2]["candidates"][0]["finishReason"], "MAX_TOKENS");
        assert_eq!(chunks[2]["usageMetadata"]["promptTokenCount"], 130);
    }

    #[test]
    fn errors_name_their_status() {
        let mut out = Vec::new();
        error(&mut out, 429, "slow");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["code"], 429);
        assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(status_name(403), "PERMISSION_DENIED");
    }
}
