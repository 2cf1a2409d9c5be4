//! The built-in `mock` protocol: answers chat completions (JSON and SSE), completions and
//! embeddings locally, so the embedded default config works with no network. Token counts are
//! deterministic: input = body bytes / 4, output = the number of words in the canned answer.
//! As an adapter ([`Mock`]) it is OpenAI's protocol; its requests go to the in-process
//! transport (`upstream::conn::Io::Local`), which hands each whole HTTP request to [`serve`]
//! and reads the HTTP answer it writes like any upstream's: the same splice, translation,
//! relay and usage accounting as a real provider, no socket.

use super::adapter::{Adapter, Splice, StreamDecode};
use super::canonical::{ChatRequest, ChatResponse, Json, Stamp};
use super::openai::OpenAi;
use super::translate::Wire;
use super::{Endpoint, Usage};
use crate::error::GatewayError;
use crate::json;
use crate::pipeline::decode::Decoder;

const WORDS: [&str; 8] = [
    "Hello",
    " from",
    " shardgate's",
    " built-in",
    " mock",
    " provider",
    ".",
    "",
];
const ANSWER: &str = "Hello from shardgate's built-in mock provider.";
const EMBEDDING_DIMS: usize = 8;

/// A complete mock response: its content type, its body, and the usage to account.
pub struct Reply {
    pub stream: bool,
    pub body: Vec<u8>,
    pub usage: Usage,
}

pub fn respond(
    endpoint: Endpoint,
    stream: bool,
    include_usage: bool,
    model: &str,
    request_len: usize,
    id: &str,
) -> Reply {
    let usage = Usage {
        input: (request_len as u64 / 4).max(1),
        output: if endpoint == Endpoint::Embeddings {
            0
        } else {
            WORDS.len() as u64 - 1
        },
        ..Usage::default()
    };
    let mut body = Vec::with_capacity(1024);
    let stream = stream && endpoint.streams();
    match (endpoint, stream) {
        (Endpoint::Embeddings, _) => embeddings(&mut body, model, usage),
        (_, false) => completion(&mut body, endpoint, model, id, usage),
        (_, true) => events(&mut body, endpoint, model, id, usage, include_usage),
    }
    Reply {
        stream,
        body,
        usage,
    }
}

/// Answers one whole HTTP/1.1 request (as a provider's head writer made it) with a whole
/// HTTP answer appended to `out`: chat completions, completions and embeddings under any base
/// path, `GET …/models`, and OpenAI's error JSON for anything else.
pub fn serve(request: &[u8], out: &mut Vec<u8>) {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(at)) = req.parse(request) else {
        return answer(out, 400, "application/json", &error("a malformed request"));
    };
    let (method, path) = (req.method.unwrap_or(""), req.path.unwrap_or(""));
    let path = path.split('?').next().unwrap_or_default();
    let endpoint = if path.ends_with("/chat/completions") {
        Endpoint::Chat
    } else if path.ends_with("/completions") {
        Endpoint::Completions
    } else if path.ends_with("/embeddings") {
        Endpoint::Embeddings
    } else if path.ends_with("/models") && method == "GET" {
        return answer(
            out,
            200,
            "application/json",
            b"{\"object\":\"list\",\"data\":[]}",
        );
    } else {
        let e = error(&format!("the mock has no {method} {path}"));
        return answer(out, 404, "application/json", &e);
    };
    let body = &request[at..];
    let mut copy = body.to_vec();
    let Ok(v) = simd_json::to_borrowed_value(&mut copy) else {
        return answer(out, 400, "application/json", &error("the body is not JSON"));
    };
    use simd_json::prelude::*;
    let model = v.get("model").and_then(|m| m.as_str()).unwrap_or("mock");
    let stream = v.get("stream").and_then(|s| s.as_bool()).unwrap_or(false);
    let include_usage = v
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(|u| u.as_bool())
        .unwrap_or(false);
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    let reply = respond(
        endpoint,
        stream,
        include_usage,
        model,
        body.len(),
        &id.to_string(),
    );
    let ct = if reply.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    answer(out, 200, ct, &reply.body);
}

thread_local! {
    /// Answer ids, per shard thread (nothing shared across cores).
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

fn error(message: &str) -> Vec<u8> {
    let mut e = b"{\"error\":{\"message\":".to_vec();
    json::push_str(&mut e, message);
    e.extend_from_slice(b",\"type\":\"invalid_request_error\",\"code\":null}}");
    e
}

fn answer(out: &mut Vec<u8>, status: u16, content_type: &str, body: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    json::push_u64(out, u64::from(status));
    out.extend_from_slice(if status == 200 { b" OK" } else { b" Error" });
    out.extend_from_slice(b"\r\ncontent-type: ");
    out.extend_from_slice(content_type.as_bytes());
    out.extend_from_slice(b"\r\ncontent-length: ");
    json::push_u64(out, body.len() as u64);
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

fn push_usage(out: &mut Vec<u8>, u: Usage) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    json::push_u64(out, u.input);
    out.extend_from_slice(b",\"completion_tokens\":");
    json::push_u64(out, u.output);
    out.extend_from_slice(b",\"total_tokens\":");
    json::push_u64(out, u.input.saturating_add(u.output));
    out.push(b'}');
}

fn preamble(out: &mut Vec<u8>, object: &str, model: &str, id: &str) {
    out.extend_from_slice(b"{\"id\":\"mock-");
    json::push_escaped(out, id.as_bytes());
    out.extend_from_slice(b"\",\"object\":\"");
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(b"\",\"created\":1700000000,\"model\":");
    json::push_str(out, model);
}

fn completion(out: &mut Vec<u8>, endpoint: Endpoint, model: &str, id: &str, usage: Usage) {
    if endpoint == Endpoint::Chat {
        preamble(out, "chat.completion", model, id);
        out.extend_from_slice(
            b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
        );
    } else {
        preamble(out, "text_completion", model, id);
        out.extend_from_slice(b",\"choices\":[{\"index\":0,\"text\":");
    }
    json::push_str(out, ANSWER);
    if endpoint == Endpoint::Chat {
        out.push(b'}');
    }
    out.extend_from_slice(b",\"finish_reason\":\"stop\"}],\"usage\":");
    push_usage(out, usage);
    out.push(b'}');
}

fn events(
    out: &mut Vec<u8>,
    endpoint: Endpoint,
    model: &str,
    id: &str,
    usage: Usage,
    include_usage: bool,
) {
    let (object, chat) = match endpoint {
        Endpoint::Chat => ("chat.completion.chunk", true),
        _ => ("text_completion", false),
    };
    let null_usage: &[u8] = if include_usage {
        b",\"usage\":null"
    } else {
        b""
    };
    let count = WORDS.len();
    for (i, word) in WORDS.iter().enumerate() {
        let last = i == count - 1;
        out.extend_from_slice(b"data: ");
        preamble(out, object, model, id);
        out.extend_from_slice(b",\"choices\":[{\"index\":0,");
        match (chat, i) {
            (true, 0) => out.extend_from_slice(b"\"delta\":{\"role\":\"assistant\",\"content\":"),
            (true, _) if last => out.extend_from_slice(b"\"delta\":{"),
            (true, _) => out.extend_from_slice(b"\"delta\":{\"content\":"),
            (false, _) => out.extend_from_slice(b"\"text\":"),
        }
        if !(chat && last) {
            json::push_str(out, word);
        }
        if chat {
            out.push(b'}');
        }
        out.extend_from_slice(if last {
            b",\"finish_reason\":\"stop\"}]"
        } else {
            b",\"finish_reason\":null}]"
        });
        out.extend_from_slice(null_usage);
        out.extend_from_slice(b"}\n\n");
    }
    if include_usage {
        out.extend_from_slice(b"data: ");
        preamble(out, object, model, id);
        out.extend_from_slice(b",\"choices\":[],\"usage\":");
        push_usage(out, usage);
        out.extend_from_slice(b"}\n\n");
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
}

fn embeddings(out: &mut Vec<u8>, model: &str, usage: Usage) {
    out.extend_from_slice(
        b"{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[",
    );
    for i in 0..EMBEDDING_DIMS {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!("{:.4}", (i as f64 + 1.0) / EMBEDDING_DIMS as f64).as_bytes(),
        );
    }
    out.extend_from_slice(b"]}],\"model\":");
    json::push_str(out, model);
    out.extend_from_slice(b",\"usage\":{\"prompt_tokens\":");
    json::push_u64(out, usage.input);
    out.extend_from_slice(b",\"total_tokens\":");
    json::push_u64(out, usage.input);
    out.extend_from_slice(b"}}");
}

/// The mock as an [`Adapter`]: OpenAI's shapes in every respect, answered in process.
pub struct Mock;

impl Adapter for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn wire(&self) -> Option<Wire> {
        OpenAi.wire()
    }

    fn local(&self) -> bool {
        true
    }

    fn chat_path(&self) -> &'static str {
        OpenAi.chat_path()
    }

    fn models_path(&self) -> &'static str {
        OpenAi.models_path()
    }

    fn splice(&self, out: &mut Vec<u8>, s: &Splice<'_>) -> bool {
        OpenAi.splice(out, s)
    }

    fn encode_request(
        &self,
        r: &ChatRequest<'_>,
        stamp: &Stamp<'_>,
        out: &mut Vec<u8>,
        dropped: &mut Vec<String>,
    ) {
        OpenAi.encode_request(r, stamp, out, dropped)
    }

    fn decode_response<'a>(&self, v: Json<'a>) -> Result<ChatResponse<'a>, GatewayError> {
        OpenAi.decode_response(v)
    }

    fn stream_decoder(&self) -> Box<dyn StreamDecode> {
        OpenAi.stream_decoder()
    }

    fn classify(&self, status: u16, body: &[u8]) -> GatewayError {
        OpenAi.classify(status, body)
    }

    fn retry_after(&self, headers: &[(String, String)], now_ms: i64) -> Option<u64> {
        OpenAi.retry_after(headers, now_ms)
    }

    fn usage_from_body(&self, json: &mut Decoder, body: &[u8]) -> Option<Usage> {
        OpenAi.usage_from_body(json, body)
    }

    fn usage_from_event(&self, json: &mut Decoder, data: &[u8], usage: &mut Option<Usage>) -> bool {
        OpenAi.usage_from_event(json, data, usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::sse;
    use crate::providers::openai;

    fn served(request: &str) -> (u16, String, Vec<u8>) {
        let mut out = Vec::new();
        serve(request.as_bytes(), &mut out);
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut r = httparse::Response::new(&mut headers);
        let at = match r.parse(&out).unwrap() {
            httparse::Status::Complete(n) => n,
            _ => panic!("incomplete head"),
        };
        let ct = r.headers.iter().find(|h| h.name == "content-type").unwrap();
        let ct = String::from_utf8(ct.value.to_vec()).unwrap();
        (r.code.unwrap(), ct, out[at..].to_vec())
    }

    #[test]
    fn the_local_transport_answers_whole_http_requests() {
        let body = r#"{"model":"m-1","messages":[],"stream":true,"stream_options":{"include_usage":true}}"#;
        let req = format!(
            "POST /chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (status, ct, sse_body) = served(&req);
        assert_eq!((status, ct.as_str()), (200, "text/event-stream"));
        let text = String::from_utf8(sse_body).unwrap();
        assert!(text.contains("\"model\":\"m-1\"") && text.ends_with("data: [DONE]\n\n"));
        assert!(text.contains("\"usage\":{\"prompt_tokens\""), "{text}");
        let whole = r#"{"model":"m","input":"x"}"#;
        let req = format!(
            "POST /v1/embeddings HTTP/1.1\r\ncontent-length: {}\r\n\r\n{whole}",
            whole.len()
        );
        let (status, ct, json) = served(&req);
        assert_eq!((status, ct.as_str()), (200, "application/json"));
        simd_json::to_owned_value(&mut json.clone()).unwrap();
        let (status, _, _) = served("GET /models HTTP/1.1\r\n\r\n");
        assert_eq!(status, 200);
        let (status, _, e) = served("POST /v1/responses HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}");
        assert_eq!(status, 404);
        assert!(String::from_utf8(e).unwrap().contains("\"error\""));
        let (status, _, _) =
            served("POST /chat/completions HTTP/1.1\r\ncontent-length: 1\r\n\r\n{");
        assert_eq!(status, 400);
    }

    #[test]
    fn json_replies_are_valid_and_carry_usage() {
        for e in [Endpoint::Chat, Endpoint::Completions, Endpoint::Embeddings] {
            let r = respond(e, false, false, "m", 40, "1");
            assert!(!r.stream);
            simd_json::to_owned_value(&mut r.body.clone()).unwrap();
            assert_eq!(
                openai::usage_from_body(&mut Default::default(), &r.body)
                    .unwrap()
                    .input,
                10
            );
        }
    }

    #[test]
    fn streams_end_with_done_and_usage_only_when_asked() {
        let r = respond(Endpoint::Chat, true, true, "m", 40, "1");
        let mut events = Vec::new();
        sse::Splitter::default()
            .feed(&r.body, |e| events.push(e.to_vec()))
            .unwrap();
        assert_eq!(events.last().unwrap(), b"data: [DONE]\n\n");
        let (u, only) = openai::usage_from_event(
            &mut Default::default(),
            sse::data(&events[events.len() - 2]).unwrap(),
        )
        .unwrap();
        assert!(only);
        assert_eq!(u, r.usage);
        for e in &events[..events.len() - 1] {
            simd_json::to_owned_value(&mut sse::data(e).unwrap().to_vec()).unwrap();
        }
        let r = respond(Endpoint::Chat, true, false, "m", 40, "1");
        assert!(!String::from_utf8(r.body).unwrap().contains("usage"));
    }
}
