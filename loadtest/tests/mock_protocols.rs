//! Black-box tests of the protocols beyond OpenAI Chat and Anthropic: Gemini (Google AI and
//! Vertex AI), Vertex's Anthropic models, Bedrock Converse (with SigV4 checked) and its
//! embedding models, the OpenAI Responses API and Cohere's embed — whole answers, streams,
//! directives, authentication, error shapes and the per-API stats.

mod support;

use loadtest::mock::eventstream::{self, Message};
use loadtest::mock::sigv4::{self, AwsKeys};
use loadtest::mock::{MockConfig, MockServer};
use serde_json::Value;
use support::{call, server};

const GEMINI: &str = "/v1beta/models/gemini-2.0-flash";
const KEY: (&str, &str) = ("x-goog-api-key", "k");
const BEARER: (&str, &str) = ("authorization", "Bearer tok");
const VERTEX: &str = "/v1/projects/p/locations/us-central1/publishers";
const CONTENTS: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}"#;

#[test]
fn gemini_whole_stream_and_errors() {
    let m = server();
    let path = format!("{GEMINI}:generateContent?chunks=3&cached_tokens=40");
    let r = call(m.addr(), "POST", &path, &[KEY], CONTENTS);
    assert_eq!(r.status, 200);
    let v = r.json();
    let cand = &v["candidates"][0];
    assert_eq!(cand["content"]["role"], "model");
    assert_eq!(cand["content"]["parts"][0]["text"], "tok0 tok1 tok2 ");
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(v["modelVersion"], "gemini-2.0-flash");
    let u = &v["usageMetadata"];
    let prompt = (CONTENTS.len() / 4) as u64 + 40;
    assert_eq!(u["promptTokenCount"], prompt);
    assert_eq!(u["cachedContentTokenCount"], 40);
    assert_eq!(u["candidatesTokenCount"], 3);
    assert_eq!(u["totalTokenCount"], prompt + 3);

    // Streamed: a chunk per piece, the last with finishReason and usage, no sentinel.
    let path = format!("{GEMINI}:streamGenerateContent?alt=sse&chunks=2");
    let r = call(m.addr(), "POST", &path, &[BEARER], CONTENTS);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let chunks = r.event_json();
    assert_eq!(chunks.len(), 3);
    assert_eq!(
        chunks[1]["candidates"][0]["content"]["parts"][0]["text"],
        "tok1 "
    );
    assert!(chunks[1]["candidates"][0]["finishReason"].is_null());
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(chunks[2]["usageMetadata"]["candidatesTokenCount"], 2);

    // Function calls come whole, one a chunk, named after the declarations.
    let body = r#"{"contents":[],"tools":[{"functionDeclarations":[{"name":"lookup"}]}]}"#;
    let path = format!("{GEMINI}:streamGenerateContent?alt=sse&tools=2&stop_reason=max_tokens");
    let chunks = call(m.addr(), "POST", &path, &[KEY], body).event_json();
    let call0 = &chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call0["name"], "lookup");
    assert_eq!(call0["args"]["city"], "Paris");
    assert_eq!(chunks[2]["candidates"][0]["finishReason"], "MAX_TOKENS");

    // Errors: Google's shape, for a missing key and for a status directive.
    let r = call(
        m.addr(),
        "POST",
        &format!("{GEMINI}:generateContent"),
        &[],
        CONTENTS,
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["status"], "PERMISSION_DENIED");
    let path = format!("{GEMINI}:generateContent?status=429");
    let r = call(m.addr(), "POST", &path, &[KEY], CONTENTS);
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], 429);
    assert_eq!(r.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    // Mid-stream: a data line with the error body.
    let path = format!("{GEMINI}:streamGenerateContent?alt=sse&error_after=1&error_status=503");
    let chunks = call(m.addr(), "POST", &path, &[KEY], CONTENTS).event_json();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["error"]["status"], "UNAVAILABLE");

    // Embeddings.
    let path = "/v1beta/models/text-embedding-004:batchEmbedContents?dims=5";
    let body = r#"{"requests":[{"content":{"parts":[{"text":"a"}]}},{"content":{"parts":[{"text":"b"}]}}]}"#;
    let v = call(m.addr(), "POST", path, &[KEY], body).json();
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(v["embeddings"][1]["values"].as_array().unwrap().len(), 5);
    let path = "/v1beta/models/text-embedding-004:embedContent";
    let body = r#"{"content":{"parts":[{"text":"a"}]},"outputDimensionality":3}"#;
    let v = call(m.addr(), "POST", path, &[KEY], body).json();
    assert_eq!(v["embedding"]["values"].as_array().unwrap().len(), 3);

    let s = m.stats();
    assert_eq!(s.api("gemini"), 6);
    assert_eq!(s.api("gemini_embed"), 2);
}

#[test]
fn vertex_gemini_predict_and_anthropic() {
    let m = server();
    let path = format!("{VERTEX}/google/models/gemini-1.5-pro:generateContent?thinking");
    let v = call(m.addr(), "POST", &path, &[BEARER], CONTENTS).json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(v["usageMetadata"]["thoughtsTokenCount"], 3);
    assert_eq!(v["modelVersion"], "gemini-1.5-pro");
    // Vertex wants a bearer token; an API key is not enough.
    let r = call(m.addr(), "POST", &path, &[KEY], CONTENTS);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");

    let path = format!("{VERTEX}/google/models/text-embedding-005:predict");
    let body = r#"{"instances":[{"content":"a"},{"content":"b"}]}"#;
    let v = call(m.addr(), "POST", &path, &[BEARER], body).json();
    let p = &v["predictions"][1]["embeddings"];
    assert_eq!(p["values"].as_array().unwrap().len(), 8);
    assert!(p["statistics"]["token_count"].as_u64().unwrap() > 0);

    // Anthropic on Vertex: the body has anthropic_version and no model; the path names it.
    let claude = format!("{VERTEX}/anthropic/models/claude-3-5-haiku@20241022");
    let body = r#"{"anthropic_version":"vertex-2023-10-16","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let v = call(
        m.addr(),
        "POST",
        &format!("{claude}:rawPredict"),
        &[BEARER],
        body,
    )
    .json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["model"], "claude-3-5-haiku@20241022");
    let path = format!("{claude}:streamRawPredict?chunks=2");
    let r = call(m.addr(), "POST", &path, &[BEARER], body);
    let names: Vec<_> = r.events().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.first().map(String::as_str), Some("message_start"));
    assert_eq!(names.last().map(String::as_str), Some("message_stop"));
    let start = &r.event_json()[0];
    assert_eq!(start["message"]["model"], "claude-3-5-haiku@20241022");
    let r = call(
        m.addr(),
        "POST",
        &format!("{claude}:rawPredict?status=529"),
        &[BEARER],
        body,
    );
    assert_eq!(r.json()["error"]["type"], "overloaded_error");

    let s = m.stats();
    assert_eq!(
        (
            s.api("vertex_gemini"),
            s.api("vertex_predict"),
            s.api("vertex_anthropic")
        ),
        (2, 1, 3)
    );
}

// === Bedrock ===

fn keys() -> AwsKeys {
    AwsKeys {
        access_key_id: "AKIDMOCK".into(),
        secret_access_key: "mock/secret".into(),
        session_token: None,
    }
}

/// The headers a SigV4 client sends for `POST target` with `body` (the test client adds
/// `host: mock` itself, so it is signed but not returned).
fn signed(target: &str, body: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("host".to_string(), "mock".to_string()),
        ("x-amz-date".to_string(), "20250101T000000Z".to_string()),
    ];
    let req = sigv4::Request {
        method: "POST",
        target,
        headers: &h,
        body: body.as_bytes(),
    };
    let auth = sigv4::authorization(&keys(), "us-east-1", "bedrock", &req);
    h.push(("authorization".into(), auth));
    h.remove(0);
    h
}

fn bedrock_call(m: &MockServer, target: &str, body: &str) -> support::Resp {
    let h = signed(target, body);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    call(m.addr(), "POST", target, &h, body)
}

fn frames(r: &support::Resp) -> Vec<Message> {
    let (msgs, rest) = eventstream::decode(&r.body).expect("valid frames");
    assert_eq!(rest, 0);
    msgs
}

fn payload(f: &Message) -> Value {
    serde_json::from_slice(&f.payload).unwrap()
}

const CONVERSE: &str = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"lookup","inputSchema":{"json":{}}}}]}}"#;
const MODEL: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0";

#[test]
fn bedrock_converse_signed() {
    let m = MockServer::start(MockConfig {
        aws: Some(keys()),
        ..MockConfig::default()
    })
    .unwrap();
    let path = format!("{MODEL}/converse?cached_tokens=9&latency_ms=5");
    let r = bedrock_call(&m, &path, CONVERSE);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(
        v["output"]["message"]["content"][0]["text"],
        "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 "
    );
    assert_eq!(v["stopReason"], "end_turn");
    assert_eq!(v["usage"]["cacheReadInputTokens"], 9);
    assert_eq!(v["usage"]["outputTokens"], 8);
    assert_eq!(v["metrics"]["latencyMs"], 5);

    // A body changed after signing, or an unsigned request, is refused.
    let h = signed(&path, CONVERSE);
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = call(m.addr(), "POST", &path, &h, "{}");
    assert_eq!(r.status, 403);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("InvalidSignatureException")
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated")
    );
    let r = call(m.addr(), "POST", &path, &[], CONVERSE);
    assert_eq!(r.status, 403);

    // Errors: status, {"message"} and the error type header.
    let r = bedrock_call(&m, &format!("{MODEL}/converse?status=429"), CONVERSE);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-amzn-errortype"), Some("ThrottlingException"));
    assert!(r.json()["message"].is_string());

    // Streamed tool calls in event-stream frames.
    let path = format!("{MODEL}/converse-stream?tools=1&tool_args=100");
    let r = bedrock_call(&m, &path, CONVERSE);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    let fs = frames(&r);
    let kinds: Vec<_> = fs
        .iter()
        .map(|f| f.header(":event-type").unwrap())
        .collect();
    assert_eq!(kinds[..2], ["messageStart", "contentBlockStart"]);
    assert_eq!(
        kinds[kinds.len() - 3..],
        ["contentBlockStop", "messageStop", "metadata"]
    );
    let start = payload(&fs[1]);
    assert_eq!(start["start"]["toolUse"]["name"], "lookup");
    let input: String = fs
        .iter()
        .filter(|f| f.header(":event-type") == Some("contentBlockDelta"))
        .map(|f| {
            payload(f)["delta"]["toolUse"]["input"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(input.len(), 100);
    assert_eq!(payload(&fs[fs.len() - 2])["stopReason"], "tool_use");
    let meta = payload(fs.last().unwrap());
    assert!(meta["usage"]["totalTokens"].as_u64().unwrap() > 0);

    // A mid-stream error is an exception frame.
    let path = format!("{MODEL}/converse-stream?error_after=2&error_status=429");
    let fs = frames(&bedrock_call(&m, &path, CONVERSE));
    assert_eq!(fs.len(), 3);
    let last = fs.last().unwrap();
    assert_eq!(last.header(":message-type"), Some("exception"));
    assert_eq!(last.header(":exception-type"), Some("throttlingException"));
    assert_eq!(m.stats().api("bedrock_converse"), 6);
}

#[test]
fn bedrock_embeddings_and_unchecked_signatures() {
    let m = server();
    // Without keys, any AWS4-HMAC-SHA256 Authorization passes; another scheme does not.
    let auth = (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=0",
    );
    let path = "/model/amazon.titan-embed-text-v2:0/invoke?dims=4";
    let v = call(m.addr(), "POST", path, &[auth], r#"{"inputText":"hello"}"#).json();
    assert_eq!(v["embedding"].as_array().unwrap().len(), 4);
    assert!(v["inputTextTokenCount"].as_u64().unwrap() > 0);
    let path = "/model/cohere.embed-english-v3/invoke";
    let body = r#"{"texts":["a","b"],"input_type":"search_document"}"#;
    let v = call(m.addr(), "POST", path, &[auth], body).json();
    assert_eq!(v["response_type"], "embeddings_floats");
    assert_eq!(v["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(v["texts"][1], "b");
    let r = call(m.addr(), "POST", path, &[BEARER], body);
    assert_eq!(r.status, 403);
    let r = call(m.addr(), "POST", "/model/meta.llama3/invoke", &[auth], "{}");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("x-amzn-errortype"), Some("ValidationException"));
    assert_eq!(m.stats().api("bedrock_invoke"), 4);
}

// === OpenAI Responses API and Cohere embed ===

const RESPONSES: &str = "/v1/responses";
const INPUT: &str = r#"{"model":"gpt-4.1","input":"hi","previous_response_id":"resp_abc"}"#;

#[test]
fn responses_api_whole_and_streamed() {
    let m = server();
    let path = format!("{RESPONSES}?chunks=2&cached_tokens=5&reasoning_tokens=7");
    let v = call(m.addr(), "POST", &path, &[], INPUT).json();
    assert_eq!(v["object"], "response");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(v["usage"]["input_tokens_details"]["cached_tokens"], 5);
    assert_eq!(v["usage"]["output_tokens_details"]["reasoning_tokens"], 7);
    assert_eq!(v["usage"]["output_tokens"], 2 + 7);
    assert_eq!(m.stats().previous_response_ids, 1);

    let body = r#"{"model":"gpt-4.1","input":"hi","stream":true,"tools":[{"type":"function","name":"lookup"}]}"#;
    let r = call(m.addr(), "POST", &format!("{RESPONSES}?tools=1"), &[], body);
    let events = r.events();
    for (k, (name, data)) in events.iter().enumerate() {
        let d: Value = serde_json::from_str(data).unwrap();
        assert_eq!(d["type"], name.as_str());
        assert_eq!(d["sequence_number"], k as u64);
    }
    let names: Vec<_> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added"
        ]
    );
    assert!(names.contains(&"response.function_call_arguments.done"));
    let done: Value = serde_json::from_str(&events.last().unwrap().1).unwrap();
    assert_eq!(done["type"], "response.completed");
    assert_eq!(done["response"]["output"][0]["name"], "lookup");

    // Errors in OpenAI's shape; mid-stream an `error` event.
    let r = call(
        m.addr(),
        "POST",
        &format!("{RESPONSES}?status=429"),
        &[],
        INPUT,
    );
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    let r = call(
        m.addr(),
        "POST",
        &format!("{RESPONSES}?error_after=3"),
        &[],
        body,
    );
    let (name, data) = r.events().pop().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap()["sequence_number"],
        3
    );
    let s = m.stats();
    assert_eq!((s.api("openai_responses"), s.previous_response_ids), (4, 2));
}

#[test]
fn cohere_embed_and_stats_json() {
    let m = server();
    let body = r#"{"model":"embed-v4.0","texts":["a","b","c"],"input_type":"search_query","embedding_types":["float"]}"#;
    let v = call(m.addr(), "POST", "/v2/embed?dims=6", &[], body).json();
    assert_eq!(v["embeddings"]["float"].as_array().unwrap().len(), 3);
    assert_eq!(v["embeddings"]["float"][2].as_array().unwrap().len(), 6);
    assert_eq!(v["texts"][0], "a");
    assert_eq!(
        v["meta"]["billed_units"]["input_tokens"],
        (body.len() / 4) as u64
    );
    let r = call(m.addr(), "POST", "/v2/embed", &[], "{}");
    assert_eq!((r.status, r.json()["message"].is_string()), (400, true));
    let stats = call(m.addr(), "GET", "/mock/stats", &[], "").json();
    assert_eq!(stats["by_api"]["cohere_embed"], 2);
    assert_eq!(stats["by_api"]["openai_chat"], 0);
    m.reset_stats();
    assert_eq!(m.stats().api("cohere_embed"), 0);
}

#[test]
fn binary_takes_aws_keys_together() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--listen", "127.0.0.1:0", "--aws-access-key-id", "A"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--aws-secret-access-key"));
}

#[test]
fn stream_directives_keep_each_protocols_framing() {
    let m = server();
    // Responses: the giant event is numbered in turn, and is exactly its size.
    let body = r#"{"model":"m","input":"hi","stream":true}"#;
    let r = call(
        m.addr(),
        "POST",
        &format!("{RESPONSES}?giant_event=3000&chunks=2"),
        &[],
        body,
    );
    let events = r.events();
    assert_eq!(events[1].0, "mock.padding");
    for (k, (_, data)) in events.iter().enumerate() {
        let d: Value = serde_json::from_str(data).unwrap();
        assert_eq!(d["sequence_number"], k as u64);
    }
    // Bedrock: the SSE-only shapes are ignored, drop_after cuts between frames.
    let auth = (
        "authorization",
        "AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=0",
    );
    let path =
        format!("{MODEL}/converse-stream?giant_event=3000&cr_only&sse_no_blank=500&chunks=2");
    let fs = frames(&call(m.addr(), "POST", &path, &[auth], CONVERSE));
    assert_eq!(fs.len(), 6, "start, 2 deltas, stop, messageStop, metadata");
    let path = format!("{MODEL}/converse-stream?drop_after=2");
    let r = call(m.addr(), "POST", &path, &[auth], CONVERSE);
    assert!(!r.complete);
    assert_eq!(frames(&r).len(), 2);
    // Gemini: malformed is one chunk that is not JSON; the rest still parse.
    let path = format!("{GEMINI}:streamGenerateContent?alt=sse&malformed&chunks=1");
    let events = call(m.addr(), "POST", &path, &[KEY], CONTENTS).events();
    assert!(serde_json::from_str::<Value>(&events[0].1).is_err());
    assert!(
        events[1..]
            .iter()
            .all(|(_, d)| serde_json::from_str::<Value>(d).is_ok())
    );
}
