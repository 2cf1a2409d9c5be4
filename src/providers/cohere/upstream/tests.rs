//! Unit tests of `providers::cohere::upstream`.

use super::*;
use crate::providers::canonical::Tool;

const STAMP: Stamp<'static> = Stamp {
    model: "command-a-03-2025",
    created: 1_700_000_000,
    default_max_tokens: 4096,
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

#[test]
fn a_conversation_with_tools_becomes_cohere_messages() {
    let schema = value(r#"{"type":"object","properties":{"city":{"type":"string"}}}"#);
    let schema =
        simd_json::to_borrowed_value(&mut simd_json::to_string(&schema).unwrap().into_bytes())
            .unwrap()
            .into_static();
    let r = ChatRequest {
        system: vec!["Be brief.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("look".into()),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "AAAA".into(),
                    }),
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking {
                        text: "hm".into(),
                        signature: None,
                    },
                    Part::ToolCall {
                        id: "c1".into(),
                        name: "weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into(),
                    },
                    Part::ToolCall {
                        id: "c2".into(),
                        name: "weather".into(),
                        arguments: r#"{"city":"Rome"}"#.into(),
                    },
                ],
            },
            Message {
                role: Role::User,
                parts: vec![
                    Part::ToolResult {
                        id: "c1".into(),
                        content: vec![Part::Text("sunny".into())],
                        is_error: false,
                    },
                    Part::ToolResult {
                        id: "c2".into(),
                        content: vec![Part::Text("rain".into())],
                        is_error: false,
                    },
                ],
            },
            text(Role::User, "thanks"),
        ],
        max_tokens: Some(100),
        top_p: Some(0.5),
        top_k: Some(40),
        stop: vec!["END".into()],
        stream: true,
        tools: vec![Tool {
            name: "weather".into(),
            description: Some("Weather now".into()),
            parameters: Some(&schema),
        }],
        tool_choice: Some(ToolChoice::Tool("weather".into())),
        user: Some("u1".into()),
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    let want = value(
        r#"{"model":"command-a-03-2025","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","tool_calls":[
          {"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
          {"id":"c2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
        {"role":"tool","tool_call_id":"c1","content":"sunny"},
        {"role":"tool","tool_call_id":"c2","content":"rain"},
        {"role":"user","content":"thanks"}],
        "max_tokens":100,"p":0.5,"k":40,"stop_sequences":["END"],"stream":true,
        "tools":[{"type":"function","function":{"name":"weather","description":"Weather now",
          "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#,
    );
    assert_eq!(v, want);
    assert_eq!(dropped, ["thinking", "tool_choice", "user"]);
}

#[test]
fn required_and_none_tool_choices_and_json_mode() {
    let r = ChatRequest {
        messages: vec![text(Role::User, "hi")],
        tool_choice: Some(ToolChoice::Required),
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::default()
    };
    let (v, dropped) = encoded(&r);
    assert_eq!(v["tool_choice"], "REQUIRED");
    assert_eq!(v["response_format"]["type"], "json_object");
    assert!(dropped.is_empty());
    let r = ChatRequest {
        messages: vec![text(Role::User, "hi")],
        tool_choice: Some(ToolChoice::None),
        ..ChatRequest::default()
    };
    assert_eq!(encoded(&r).0["tool_choice"], "NONE");
}

#[test]
fn whole_answers_with_text_tools_and_every_finish() {
    let mut body = br#"{"id":"r1","finish_reason":"TOOL_CALL","message":{"role":"assistant","tool_plan":"I will look","tool_calls":[{"id":"c1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},"usage":{"billed_units":{"input_tokens":5,"output_tokens":3},"tokens":{"input_tokens":12,"output_tokens":3}}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut body).unwrap();
    let r = decode_response(&v).unwrap();
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert!(
        matches!(&r.parts[0], Part::ToolCall { id, arguments, .. } if id == "c1" && arguments.contains("Paris"))
    );
    assert_eq!(
        (r.usage.input, r.usage.output),
        (12, 3),
        "tokens over billed units"
    );
    for (reason, finish) in [
        ("COMPLETE", Finish::EndTurn),
        ("MAX_TOKENS", Finish::Length),
        ("STOP_SEQUENCE", Finish::StopSequence),
    ] {
        let mut b = format!(r#"{{"id":"r","finish_reason":"{reason}","message":{{"role":"assistant","content":[{{"type":"text","text":"hi"}}]}},"usage":{{"billed_units":{{"input_tokens":2,"output_tokens":1}}}}}}"#).into_bytes();
        let v = simd_json::to_borrowed_value(&mut b).unwrap();
        let r = decode_response(&v).unwrap();
        assert_eq!(r.finish, Some(finish));
        assert!(matches!(&r.parts[0], Part::Text(t) if t == "hi"));
        assert_eq!(r.usage.input, 2, "billed units when tokens are absent");
    }
    let mut b = br#"{"id":"r","finish_reason":"ERROR","message":{"role":"assistant"}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    assert_eq!(decode_response(&v).unwrap_err().kind, Kind::UpstreamServer);
    let mut b = br#"{"id":"r"}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    assert_eq!(
        decode_response(&v).unwrap_err().kind,
        Kind::UpstreamProtocol
    );
}

fn streamed(events: &[&str]) -> (Vec<String>, Result<(), GatewayError>) {
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for e in events {
        let mut data = e.as_bytes().to_vec();
        let r = d.decode(&mut data, &mut |ev| seen.push(format!("{ev:?}")));
        if r.is_err() {
            return (seen, r);
        }
    }
    (seen, Ok(()))
}

#[test]
fn a_stream_of_text_and_tool_calls_decodes_in_order() {
    let (seen, r) = streamed(&[
        r#"{"type":"message-start","id":"m1","delta":{"message":{"role":"assistant"}}}"#,
        r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hel"}}}}"#,
        r#"{"type":"content-end","index":0}"#,
        r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will"}}}"#,
        r#"{"type":"tool-call-start","index":1,"delta":{"message":{"tool_calls":{"id":"c2","type":"function","function":{"name":"f","arguments":""}}}}}"#,
        r#"{"type":"tool-call-delta","index":1,"delta":{"message":{"tool_calls":{"function":{"arguments":"{\"a\":"}}}}}"#,
        r#"{"type":"tool-call-delta","index":1,"delta":{"message":{"tool_calls":{"function":{"arguments":"1}"}}}}}"#,
        r#"{"type":"tool-call-end","index":1}"#,
        r#"{"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"tokens":{"input_tokens":9,"output_tokens":4}}}}"#,
    ]);
    r.unwrap();
    let joined = seen.join("\n");
    for want in [
        "Start { id: \"m1\"",
        "Text(\"Hel\")",
        "ToolCall { index: 1, id: \"c2\", name: \"f\" }",
        "ToolArguments { index: 1, fragment: \"{\\\"a\\\":\" }",
        "ToolArguments { index: 1, fragment: \"1}\" }",
        "Finish { reason: ToolCalls",
        "input: 9, output: 4",
        "Done",
    ] {
        assert!(joined.contains(want), "{want} in\n{joined}");
    }
    assert_eq!(seen.last().map(String::as_str), Some("Done"));
}

#[test]
fn broken_streams_are_errors_not_panics() {
    let (_, r) = streamed(&["{not json"]);
    assert_eq!(r.unwrap_err().kind, Kind::UpstreamProtocol);
    let (_, r) = streamed(&[
        r#"{"type":"tool-call-delta","index":3,"delta":{"message":{"tool_calls":{"function":{"arguments":"x"}}}}}"#,
    ]);
    assert_eq!(r.unwrap_err().kind, Kind::UpstreamProtocol);
    let (seen, r) = streamed(&[r#"{"type":"message-end","delta":{"finish_reason":"ERROR"}}"#]);
    r.unwrap();
    assert!(
        seen[0].starts_with("Error { kind: UpstreamServer"),
        "{seen:?}"
    );
    let (seen, r) = streamed(&[
        r#"{"type":"message-end","delta":{"error":"internal failure","finish_reason":"ERROR"}}"#,
    ]);
    r.unwrap();
    assert!(seen[0].contains("internal failure"), "{seen:?}");
}

#[test]
fn errors_by_status_with_coheres_message() {
    let body = br#"{"id":"e1","message":"invalid api token"}"#;
    let e = classify(401, body);
    assert_eq!(e.kind, Kind::UpstreamAuth);
    assert!(e.message.contains("invalid api token"), "{}", e.message);
    assert_eq!(classify(429, b"{}").kind, Kind::UpstreamRateLimited);
    assert_eq!(
        classify(422, br#"{"message":"bad"}"#).kind,
        Kind::UpstreamBadRequest
    );
    assert_eq!(
        classify(400, br#"{"message":"too many tokens: 300000"}"#).kind,
        Kind::UpstreamContextWindow
    );
    assert_eq!(classify(500, b"<html>").kind, Kind::UpstreamServer);
    assert_eq!(classify(499, b"{}").kind, Kind::UpstreamTimeout);
}
