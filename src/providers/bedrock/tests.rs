use super::*;
use crate::config::{AwsKeys, Origin, Provider, Secret, Timeouts};
use crate::providers::canonical::{Finish, Image, Message, Part, Role, Tool, ToolChoice};

fn provider() -> (Provider, Origin) {
    let s = |v: &str| Secret::new(v.into(), "test".into());
    let p = Provider {
        name: "aws".into(),
        protocol: crate::providers::Protocol::Bedrock,
        vendor: crate::providers::family::find("bedrock").unwrap(),
        origin: Some(0),
        base_path: String::new(),
        api_key: None,
        headers: vec![],
        timeouts: Timeouts::default(),
        api_version: None,
        default_max_tokens: 4096,
        region: Some("us-east-1".into()),
        project: None,
        aws: Some(AwsKeys {
            access_key_id: s("AKIDEXAMPLE"),
            secret_access_key: s("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(s("tok")),
        }),
        token: None,
    };
    let mut o = Origin::local();
    o.local = false;
    o.authority = "bedrock-runtime.us-east-1.amazonaws.com".into();
    (p, o)
}

#[test]
fn heads_are_signed_for_the_model_path() {
    let (p, o) = provider();
    let h = Head {
        provider: &p,
        api_key: None,
        origin: &o,
        endpoint: Endpoint::Chat,
        model: "anthropic.claude-3-5-sonnet-20240620-v1:0",
        body: b"{}",
        stream: true,
        now: 1_440_938_160, // 2015-08-30T12:36:00Z
    };
    let mut out = Vec::new();
    Bedrock.write_head(&mut out, &h);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.starts_with(
            "POST /model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream HTTP/1.1\r\n"
        ),
        "{text}"
    );
    assert!(text.contains("\r\nx-amz-date: 20150830T123600Z\r\n"));
    assert!(text.contains("\r\nx-amz-security-token: tok\r\n"));
    assert!(text.contains("\r\naccept: application/vnd.amazon.eventstream\r\n"));
    assert!(text.contains("authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
}

#[test]
fn converse_requests_carry_tools_images_results_and_thinking() {
    let mut schema = br#"{"type":"object"}"#.to_vec();
    let schema = simd_json::to_borrowed_value(&mut schema).unwrap();
    let r = ChatRequest {
        system: vec!["S".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![
                    Part::Text("look".into()),
                    Part::Image(Image::Base64 {
                        media_type: "image/png".into(),
                        data: "AA==".into(),
                    }),
                    Part::Image(Image::Url("https://x/y.png".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                parts: vec![Part::ToolCall {
                    id: "t1".into(),
                    name: "f".into(),
                    arguments: r#"{"a":1}"#.into(),
                }],
            },
            Message {
                role: Role::User,
                parts: vec![Part::ToolResult {
                    id: "t1".into(),
                    content: vec![Part::Text("r".into())],
                    is_error: true,
                }],
            },
        ],
        tools: vec![Tool {
            openapi: false,
            name: "f".into(),
            description: None,
            parameters: Some(&schema),
        }],
        tool_choice: Some(ToolChoice::Required),
        reasoning: Some(crate::providers::canonical::Reasoning::Budget(2000)),
        max_tokens: Some(1000),
        ..ChatRequest::default()
    };
    let stamp = Stamp {
        model: "m",
        created: 0,
        default_max_tokens: 4096,
        id: "",
    };
    let (mut out, mut dropped) = (Vec::new(), Vec::new());
    Bedrock.encode_request(&r, &stamp, &mut out, &mut dropped);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["system"][0]["text"], "S");
    assert_eq!(v["messages"][0]["content"][1]["image"]["format"], "png");
    assert_eq!(v["messages"][0]["content"].as_array().unwrap().len(), 2);
    assert_eq!(v["messages"][1]["content"][0]["toolUse"]["input"]["a"], 1);
    assert_eq!(
        v["messages"][2]["content"][0]["toolResult"]["status"],
        "error"
    );
    assert_eq!(v["toolConfig"]["toolChoice"], serde_json::json!({"any":{}}));
    assert_eq!(
        v["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["type"],
        "object"
    );
    assert_eq!(v["inferenceConfig"]["maxTokens"], 3000);
    assert_eq!(
        v["additionalModelRequestFields"]["thinking"]["budget_tokens"],
        2000
    );
    assert_eq!(dropped, ["image_url"]);
}

#[test]
fn answers_streams_and_errors_read_back() {
    let mut b = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hi"},{"toolUse":{"toolUseId":"t","name":"f","input":{"x":2}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":4,"cacheReadInputTokens":5}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = Bedrock.decode_response(&v).unwrap();
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert_eq!(
        (r.usage.input, r.usage.cache_read, r.usage.output),
        (8, 5, 4)
    );
    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for e in [
        r#"{"messageStart":{"role":"assistant"}}"#,
        r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"Hi"}}}"#,
        r#"{"contentBlockStart":{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}}"#,
        r#"{"contentBlockDelta":{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"x\""}}}}"#,
        r#"{"messageStop":{"stopReason":"tool_use"}}"#,
        r#"{"metadata":{"usage":{"inputTokens":1,"outputTokens":2}}}"#,
    ] {
        let mut b = e.as_bytes().to_vec();
        d.decode(&mut b, &mut |ev| seen.push(format!("{ev:?}")))
            .unwrap();
    }
    assert!(seen[2].starts_with("ToolCall { index: 0"), "{seen:?}");
    assert!(seen[3].contains("ToolArguments { index: 0"));
    assert_eq!(seen.last().unwrap(), "Done");
    let mut d = StreamDecoder::default();
    let mut b = br#"{"throttlingException":{"message":"Too many requests"}}"#.to_vec();
    let mut err = None;
    d.decode(&mut b, &mut |ev| err = Some(format!("{ev:?}")))
        .unwrap();
    assert!(err.unwrap().contains("UpstreamRateLimited"));
    let e = Bedrock.classify(
        400,
        br#"{"message":"Input is too long for requested model."}"#,
    );
    assert_eq!(e.kind, crate::error::Kind::UpstreamContextWindow);
    assert_eq!(
        Bedrock.classify(403, br#"{"message":"denied"}"#).kind,
        crate::error::Kind::UpstreamAuth
    );
}
