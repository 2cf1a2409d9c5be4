use super::*;
use crate::providers::canonical::Tool;

fn parse(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn stamp() -> Stamp<'static> {
    Stamp {
        model: "gemini-x",
        created: 0,
        default_max_tokens: 4096,
        id: "",
    }
}

#[test]
fn a_request_carries_turns_results_by_name_tools_and_settings() {
    let mut schema = br#"{"type":"object"}"#.to_vec();
    let schema = simd_json::to_borrowed_value(&mut schema).unwrap();
    let r = ChatRequest {
        system: vec!["Be brief.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("look".into()),
                    Part::Image(Image::Url("data:image/png;base64,AAAA".into())),
                    Part::Image(Image::Url("https://x.test/cat.webp".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    Part::Thinking {
                        text: "hm".into(),
                        signature: Some("sig".into()),
                    },
                    Part::ToolCall {
                        id: "c1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into(),
                    },
                ],
            },
            Message {
                role: Role::User,
                parts: vec![Part::ToolResult {
                    id: "c1".into(),
                    content: vec![Part::Text("sunny".into())],
                    is_error: false,
                }],
            },
        ],
        tools: vec![Tool {
            openapi: false,
            name: "get_weather".into(),
            description: Some("Weather".into()),
            parameters: Some(&schema),
        }],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        temperature: Some(0.5),
        max_tokens: Some(64),
        stop: vec!["END".into()],
        reasoning: Some(Reasoning::Budget(2048)),
        user: Some("u".into()),
        ..ChatRequest::default()
    };
    let (mut out, mut dropped) = (Vec::new(), Vec::new());
    encode_request(&r, &stamp(), &mut out, &mut dropped);
    let v = parse(std::str::from_utf8(&out).unwrap());
    assert_eq!(v["systemInstruction"]["parts"][0]["text"], "Be brief.");
    let c = &v["contents"];
    assert_eq!(c[0]["parts"][1]["inlineData"]["mimeType"], "image/png");
    assert_eq!(c[0]["parts"][2]["fileData"]["mimeType"], "image/webp");
    assert_eq!(c[1]["role"], "model");
    assert_eq!(c[1]["parts"][0]["functionCall"]["args"]["city"], "Paris");
    assert_eq!(c[2]["parts"][0]["functionResponse"]["name"], "get_weather");
    assert_eq!(
        c[2]["parts"][0]["functionResponse"]["response"]["result"],
        "sunny"
    );
    assert_eq!(
        v["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["type"],
        "object"
    );
    let fc = &v["toolConfig"]["functionCallingConfig"];
    assert_eq!(
        (fc["mode"].as_str(), fc["allowedFunctionNames"][0].as_str()),
        (Some("ANY"), Some("get_weather"))
    );
    let g = &v["generationConfig"];
    assert_eq!(
        (g["temperature"].as_f64(), g["maxOutputTokens"].as_u64()),
        (Some(0.5), Some(64))
    );
    assert_eq!(g["stopSequences"][0], "END");
    assert_eq!(g["thinkingConfig"]["thinkingBudget"], 2048);
    assert!(v.get("model").is_none());
    assert_eq!(dropped, ["thinking", "user"]);
}

#[test]
fn answers_read_calls_thoughts_finish_and_usage() {
    let mut b = br#"{"candidates":[{"content":{"role":"model","parts":[{"text":"think","thought":true},{"text":"Hi"},{"functionCall":{"name":"f","args":{"a":[1]}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":5,"thoughtsTokenCount":7,"cachedContentTokenCount":8},"modelVersion":"gemini-x-001","responseId":"rid"}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = decode_response(&v).unwrap();
    assert_eq!((r.id.as_ref(), r.model.as_ref()), ("rid", "gemini-x-001"));
    assert!(matches!(&r.parts[0], Part::Thinking { text, .. } if text == "think"));
    assert!(
        matches!(&r.parts[2], Part::ToolCall { id, arguments, .. } if id == "call_rid_0" && arguments == r#"{"a":[1]}"#)
    );
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert_eq!(
        (
            r.usage.input,
            r.usage.output,
            r.usage.cache_read,
            r.usage.reasoning
        ),
        (20, 12, 8, 7)
    );
    let mut blocked = br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut blocked).unwrap();
    assert_eq!(
        decode_response(&v).unwrap().finish,
        Some(Finish::ContentFilter)
    );
}

#[test]
fn google_errors_are_classified() {
    let e = classify(
        429,
        br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#,
    );
    assert_eq!(e.kind, Kind::UpstreamRateLimited);
    assert!(e.message.contains("Quota exceeded"));
    let e = classify(400, br#"{"error":{"code":400,"message":"The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#);
    assert_eq!(e.kind, Kind::UpstreamContextWindow);
    assert_eq!(
        classify(
            403,
            b"[{\"error\":{\"code\":403,\"message\":\"no\",\"status\":\"PERMISSION_DENIED\"}}]"
        )
        .kind,
        Kind::UpstreamAuth
    );
    assert_eq!(
        classify(503, b"<html>down</html>").kind,
        Kind::UpstreamServer
    );
}
