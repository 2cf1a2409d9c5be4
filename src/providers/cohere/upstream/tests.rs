//! Unit tests of `providers::cohere::upstream`.

use super::*;
use crate::providers::canonical::{Effort, Tool};

const STAMP: Stamp<'static> = Stamp {
    model: "command-a-03-2025",
    created: 1_700_000_000,
    default_max_tokens: 4096,
    id: "",
};

fn value(s: &str) -> simd_json::OwnedValue {
    simd_json::to_owned_value(&mut s.as_bytes().to_vec()).expect("valid JSON")
}

fn encoded(r: &ChatRequest<'_>) -> (simd_json::OwnedValue, Vec<String>) {
    let mut out = Vec::new();
    let mut dropped = Vec::new();
    encode_request(r, &STAMP, &mut out, &mut dropped);
    (value(std::str::from_utf8(&out).unwrap()), dropped)
}

fn text(role: Role, t: &'static str) -> Message<'static> {
    Message {
        role,
        parts: vec![Part::Text(t.into())],
    }
}

fn tool(name: &'static str) -> Tool<'static> {
    Tool {
        openapi: false,
        name: name.into(),
        description: None,
        parameters: None,
    }
}

fn call(id: &'static str, arguments: &'static str) -> Part<'static> {
    Part::ToolCall {
        id: id.into(),
        name: "weather".into(),
        arguments: arguments.into(),
    }
}

fn result(id: &'static str, content: Vec<Part<'static>>) -> Part<'static> {
    Part::ToolResult {
        id: id.into(),
        content,
        is_error: false,
    }
}

fn decoded(body: &str) -> Result<ChatResponse<'static>, GatewayError> {
    let bytes: &'static mut [u8] = Box::leak(body.as_bytes().to_vec().into_boxed_slice());
    let v: &'static _ = Box::leak(Box::new(simd_json::to_borrowed_value(bytes).unwrap()));
    decode_response(v)
}

// === request ===

#[test]
fn text_system_prompt_and_turns() {
    let r = ChatRequest {
        system: vec!["Be brief.".into(), "Answer in French.".into()],
        messages: vec![
            text(Role::User, "Hi, I am Ada."),
            text(Role::Assistant, "Bonjour Ada."),
            text(Role::User, "My name?"),
        ],
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    let want = value(
        r#"{"model":"command-a-03-2025","messages":[
        {"role":"system","content":"Be brief.\n\nAnswer in French."},
        {"role":"user","content":"Hi, I am Ada."},
        {"role":"assistant","content":"Bonjour Ada."},
        {"role":"user","content":"My name?"}]}"#,
    );
    assert_eq!(v, want, "no max_tokens, stream or sampling unless asked");
    assert!(dropped.is_empty());
}

#[test]
fn images_become_content_blocks() {
    let r = ChatRequest {
        messages: vec![Message {
            role: Role::User,
            parts: vec![
                Part::Text("look".into()),
                Part::Image(Image::Url("https://example.org/a.jpg".into())),
                Part::Image(Image::Base64 {
                    media_type: "image/png".into(),
                    data: "AAAA".into(),
                }),
            ],
        }],
        ..ChatRequest::default()
    };
    let (v, _) = encoded(&r);
    assert_eq!(
        v["messages"][0]["content"],
        value(
            r#"[{"type":"text","text":"look"},
            {"type":"image_url","image_url":{"url":"https://example.org/a.jpg"}},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]"#
        )
    );
}

#[test]
fn parallel_tool_calls_and_their_results() {
    let schema = value(r#"{"type":"object","properties":{"city":{"type":"string"}}}"#);
    let mut bytes = simd_json::to_string(&schema).unwrap().into_bytes();
    let schema = simd_json::to_borrowed_value(&mut bytes).unwrap();
    let r = ChatRequest {
        messages: vec![
            text(Role::User, "Paris and Rome?"),
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Text("I will look both up.".into()),
                    call("c1", r#"{"city":"Paris"}"#),
                    call("c2", ""),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    result("c1", vec![Part::Text("sunny".into())]),
                    result("c2", vec![]),
                    Part::Text("thanks".into()),
                ],
            },
        ],
        tools: vec![Tool {
            openapi: false,
            name: "weather".into(),
            description: Some("Weather now".into()),
            parameters: Some(&schema),
        }],
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    let want = value(
        r#"[{"role":"user","content":"Paris and Rome?"},
        {"role":"assistant","tool_plan":"I will look both up.","tool_calls":[
          {"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
          {"id":"c2","type":"function","function":{"name":"weather","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"sunny"}]},
        {"role":"tool","tool_call_id":"c2","content":[{"type":"text","text":""}]},
        {"role":"user","content":"thanks"}]"#,
    );
    assert_eq!(v["messages"], want);
    assert_eq!(
        v["tools"],
        value(
            r#"[{"type":"function","function":{"name":"weather","description":"Weather now",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#
        )
    );
    assert!(v.get("tool_choice").is_none());
    assert!(dropped.is_empty());
}

#[test]
fn tool_choices() {
    let with = |choice, tools: Vec<Tool<'static>>| {
        encoded(&ChatRequest {
            messages: vec![text(Role::User, "hi")],
            tools,
            tool_choice: Some(choice),
            ..ChatRequest::default()
        })
    };
    let (v, _) = with(ToolChoice::Required, vec![tool("a"), tool("b")]);
    assert_eq!(v["tool_choice"], "REQUIRED");
    let (v, _) = with(ToolChoice::None, vec![tool("a")]);
    assert_eq!(v["tool_choice"], "NONE");
    let (v, dropped) = with(ToolChoice::Auto, vec![tool("a")]);
    assert!(v.get("tool_choice").is_none() && dropped.is_empty());
    // The only tool defined: "call some tool" is "call this one".
    let (v, dropped) = with(ToolChoice::Tool("a".into()), vec![tool("a")]);
    assert_eq!(v["tool_choice"], "REQUIRED");
    assert!(dropped.is_empty());
    let (v, dropped) = with(ToolChoice::Tool("a".into()), vec![tool("a"), tool("b")]);
    assert!(v.get("tool_choice").is_none());
    assert_eq!(dropped, ["tool_choice"]);
    // No tools: the choice means nothing and is not sent.
    let (v, dropped) = with(ToolChoice::Required, vec![]);
    assert!(v.get("tool_choice").is_none() && v.get("tools").is_none() && dropped.is_empty());
}

#[test]
fn sampling_fields_are_renamed_and_clamped() {
    let r = ChatRequest {
        messages: vec![text(Role::User, "hi")],
        max_tokens: Some(100),
        temperature: Some(0.4),
        top_p: Some(0.9),
        top_k: Some(40),
        stop: vec!["END".into(), "###".into()],
        seed: Some(7),
        frequency_penalty: Some(0.2),
        presence_penalty: Some(0.0),
        stream: true,
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["max_tokens"], 100);
    assert_eq!(v["temperature"], 0.4);
    assert_eq!(v["p"], 0.9);
    assert_eq!(v["k"], 40);
    assert_eq!(v["stop_sequences"], value("[\"END\",\"###\"]"));
    assert_eq!(v["seed"], 7);
    assert_eq!(v["frequency_penalty"], 0.2);
    assert_eq!(v["presence_penalty"], 0.0);
    assert_eq!(v["stream"], true);
    assert!(v.get("top_p").is_none() && v.get("top_k").is_none() && v.get("stop").is_none());
    assert!(dropped.is_empty());

    let r = ChatRequest {
        messages: vec![text(Role::User, "hi")],
        temperature: Some(1.5),
        top_p: Some(1.0),
        top_k: Some(900),
        stop: (0..7).map(|i| format!("s{i}").into()).collect(),
        seed: Some(-3),
        frequency_penalty: Some(-0.5),
        presence_penalty: Some(1.5),
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["temperature"], 1.0);
    assert_eq!(v["p"], 0.99);
    assert_eq!(v["k"], 500);
    assert_eq!(v["stop_sequences"].as_array().unwrap().len(), 5);
    assert!(v.get("seed").is_none());
    assert_eq!(v["frequency_penalty"], 0.0);
    assert_eq!(v["presence_penalty"], 1.0);
    assert_eq!(
        dropped,
        [
            "temperature (clamped to 1)",
            "top_p (clamped to 0.99)",
            "frequency_penalty (clamped to 0)",
            "presence_penalty (clamped to 1)",
            "top_k (clamped to 500)",
            STOP_TRUNCATED,
            SEED_NEGATIVE,
        ]
    );
}

#[test]
fn json_mode_with_and_without_a_schema() {
    let mut bytes = br#"{"type":"object","properties":{"name":{"type":"string"}}}"#.to_vec();
    let schema = simd_json::to_borrowed_value(&mut bytes).unwrap();
    let with = |f, tools: Vec<Tool<'static>>| {
        encoded(&ChatRequest {
            messages: vec![text(Role::User, "JSON please")],
            response_format: Some(f),
            tools,
            ..ChatRequest::default()
        })
    };
    let (v, _) = with(ResponseFormat::JsonObject, vec![]);
    assert_eq!(v["response_format"], value(r#"{"type":"json_object"}"#));
    let (v, _) = with(
        ResponseFormat::JsonSchema {
            name: "person".into(),
            schema: Some(&schema),
            strict: None,
        },
        vec![],
    );
    assert_eq!(
        v["response_format"],
        value(
            r#"{"type":"json_object","json_schema":{"type":"object","properties":{"name":{"type":"string"}}}}"#
        )
    );
    let (v, _) = with(ResponseFormat::Text, vec![]);
    assert!(v.get("response_format").is_none());
    let (v, dropped) = with(ResponseFormat::JsonObject, vec![tool("a")]);
    assert!(v.get("response_format").is_none());
    assert_eq!(dropped, [JSON_WITH_TOOLS]);
}

#[test]
fn reasoning_becomes_a_thinking_budget() {
    let with = |reasoning| {
        encoded(&ChatRequest {
            messages: vec![text(Role::User, "think")],
            reasoning: Some(reasoning),
            ..ChatRequest::default()
        })
        .0["thinking"]
            .clone()
    };
    assert_eq!(
        with(Reasoning::Effort(Effort::Low)),
        value(r#"{"type":"enabled","token_budget":2048}"#)
    );
    assert_eq!(
        with(Reasoning::Budget(5000)),
        value(r#"{"type":"enabled","token_budget":5000}"#)
    );
    assert_eq!(with(Reasoning::Disabled), value(r#"{"type":"disabled"}"#));
}

#[test]
fn thinking_goes_back_as_content_blocks() {
    let thinking = || Part::Thinking {
        text: "hm".into(),
        signature: Some("sig".into()),
    };
    let r = ChatRequest {
        messages: vec![
            text(Role::User, "q"),
            Message {
                role: Role::Assistant,
                parts: vec![thinking(), Part::Text("a".into())],
            },
            text(Role::User, "more"),
            Message {
                role: Role::Assistant,
                parts: vec![thinking(), Part::Text("plan".into()), call("c1", "{}")],
            },
        ],
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(
        v["messages"][1],
        value(
            r#"{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"a"}]}"#
        )
    );
    let m = &v["messages"][3];
    assert_eq!(
        m["content"],
        value(r#"[{"type":"thinking","thinking":"hm"}]"#)
    );
    assert_eq!(m["tool_plan"], "plan");
    assert!(dropped.is_empty());
}

#[test]
fn dropped_fields_are_named_once() {
    let r = ChatRequest {
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("a".into()),
                    Part::Thinking {
                        text: "x".into(),
                        signature: None,
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::RedactedThinking("opaque".into()),
                    Part::Image(Image::Url("https://example.org/x.png".into())),
                    call("c1", "{}"),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![result(
                    "c1",
                    vec![Part::Image(Image::Url("https://example.org/y.png".into()))],
                )],
            },
        ],
        tools: vec![tool("weather")],
        parallel_tool_calls: Some(false),
        n: Some(2),
        user: Some("u-1".into()),
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["messages"].as_array().unwrap().len(), 3);
    assert_eq!(
        dropped,
        [
            "thinking",
            "redacted_thinking",
            "assistant image",
            "tool_result image",
            "parallel_tool_calls",
            "n",
            "user",
        ]
    );
    // An assistant turn with nothing Cohere takes still says something.
    let r = ChatRequest {
        messages: vec![Message {
            role: Role::Assistant,
            parts: vec![],
        }],
        ..ChatRequest::default()
    };
    assert_eq!(
        encoded(&r).0["messages"][0],
        value(r#"{"role":"assistant","content":""}"#)
    );
}

// === response ===

#[test]
fn answers_with_text_thinking_and_tool_calls() {
    let r = decoded(
        r#"{"id":"r1","finish_reason":"COMPLETE","message":{"role":"assistant","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"Hello"},{"type":"text","text":"!"},{"type":"future"}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":3},"tokens":{"input_tokens":12,"output_tokens":3}}}"#,
    )
    .unwrap();
    assert_eq!(r.id, "r1");
    assert_eq!(r.model, "");
    assert!(matches!(&r.parts[0], Part::Thinking { text, signature: None } if text == "hm"));
    assert!(matches!(&r.parts[1], Part::Text(t) if t == "Hello"));
    assert!(matches!(&r.parts[2], Part::Text(t) if t == "!"));
    assert_eq!(r.parts.len(), 3);
    assert_eq!(r.finish, Some(Finish::EndTurn));
    assert_eq!(
        r.usage,
        Usage {
            input: 12,
            output: 3,
            ..Usage::default()
        },
        "tokens over billed units"
    );

    let r = decoded(
        r#"{"id":"r2","finish_reason":"TOOL_CALL","message":{"role":"assistant","tool_plan":"I will look","tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"c2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":30}}}"#,
    )
    .unwrap();
    assert!(matches!(&r.parts[0], Part::Text(t) if t == "I will look"));
    assert!(
        matches!(&r.parts[2], Part::ToolCall { id, arguments, .. } if id == "c2" && arguments.contains("Rome"))
    );
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert_eq!(
        (r.usage.input, r.usage.output),
        (5, 30),
        "billed units alone"
    );
}

#[test]
fn every_finish_reason() {
    for (reason, finish) in [
        ("COMPLETE", Some(Finish::EndTurn)),
        ("MAX_TOKENS", Some(Finish::Length)),
        ("STOP_SEQUENCE", Some(Finish::StopSequence)),
        ("TOOL_CALL", Some(Finish::ToolCalls)),
        ("SOMETHING_NEW", None),
    ] {
        let r = decoded(&format!(
            r#"{{"id":"r","finish_reason":"{reason}","message":{{"role":"assistant","content":[{{"type":"text","text":"hi"}}]}}}}"#
        ))
        .unwrap();
        assert_eq!(r.finish, finish, "{reason}");
        assert_eq!(r.usage, Usage::default());
    }
    for (reason, kind) in [
        ("ERROR", Kind::UpstreamServer),
        ("TIMEOUT", Kind::UpstreamTimeout),
    ] {
        let e = decoded(&format!(
            r#"{{"id":"r","finish_reason":"{reason}","message":{{"role":"assistant"}}}}"#
        ))
        .unwrap_err();
        assert_eq!(e.kind, kind, "{reason}");
        assert!(e.message.starts_with("cohere: "), "{}", e.message);
    }
}

#[test]
fn malformed_answers_are_protocol_errors() {
    for body in [
        r#"{"id":"r"}"#,
        r#"{"id":"r","message":"x"}"#,
        r#"{"id":"r","finish_reason":"TOOL_CALL","message":{"tool_calls":[{"type":"function"}]}}"#,
    ] {
        assert_eq!(
            decoded(body).unwrap_err().kind,
            Kind::UpstreamProtocol,
            "{body}"
        );
    }
}

// === errors ===

#[test]
fn every_error_status_class() {
    let c = |status, body: &str| classify(status, body.as_bytes());
    let e = c(401, r#"{"id":"e1","message":"invalid api token"}"#);
    assert_eq!(e.kind, Kind::UpstreamAuth);
    assert_eq!(e.message, "cohere: invalid api token");
    assert_eq!(
        c(403, r#"{"message":"no access"}"#).kind,
        Kind::UpstreamAuth
    );
    assert_eq!(
        c(400, r#"{"message":"invalid request: temperature"}"#).kind,
        Kind::UpstreamBadRequest
    );
    assert_eq!(
        c(422, r#"{"message":"bad"}"#).kind,
        Kind::UpstreamBadRequest
    );
    assert_eq!(
        c(404, r#"{"message":"model 'x' not found"}"#).kind,
        Kind::UpstreamBadRequest
    );
    assert_eq!(
        c(
            400,
            r#"{"message":"too many tokens: total number of tokens in the prompt cannot exceed 256000"}"#
        )
        .kind,
        Kind::UpstreamContextWindow
    );
    assert_eq!(c(429, "{}").kind, Kind::UpstreamRateLimited);
    assert_eq!(c(498, "{}").kind, Kind::UpstreamContentPolicy);
    assert_eq!(c(499, "{}").kind, Kind::UpstreamTimeout);
    assert_eq!(c(504, "").kind, Kind::UpstreamTimeout);
    assert_eq!(c(503, "").kind, Kind::UpstreamServer);
    let e = c(500, "<html>oops</html>");
    assert_eq!(e.kind, Kind::UpstreamServer);
    assert_eq!(e.message, "cohere: HTTP 500");
    assert_eq!(e.retry_after_s, None);
    assert_eq!(c(302, "").kind, Kind::UpstreamProtocol);
}
