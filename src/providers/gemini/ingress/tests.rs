use super::*;

fn decode(body: &str) -> Result<String, GatewayError> {
    let mut b = body.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    decode_request(&v).map(|r| format!("{r:?}"))
}

#[test]
fn requests_read_turns_calls_results_and_config() {
    let body = r#"{"systemInstruction":{"parts":[{"text":"Be brief."}]},
      "contents":[{"role":"user","parts":[{"text":"hi"},{"inlineData":{"mimeType":"image/png","data":"AA=="}}]},
        {"role":"model","parts":[{"functionCall":{"name":"f","args":{"x":1}}},{"functionCall":{"name":"f","args":{}}}]},
        {"role":"user","parts":[{"functionResponse":{"name":"f","response":{"result":"one"}}},{"functionResponse":{"name":"f","response":{"error":"two"}}}]}],
      "tools":[{"functionDeclarations":[{"name":"f","description":"d","parametersJsonSchema":{"type":"object"}}]}],
      "toolConfig":{"functionCallingConfig":{"mode":"ANY"}},
      "generationConfig":{"temperature":0.1,"maxOutputTokens":9,"stopSequences":["S"],"responseMimeType":"application/json","thinkingConfig":{"thinkingBudget":0}},
      "safetySettings":[]}"#;
    let mut b = body.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = decode_request(&v).unwrap();
    assert_eq!(r.system, ["Be brief."]);
    assert_eq!(r.messages.len(), 3);
    let ids: Vec<String> = r.messages[1]
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall { id, .. } => Some(id.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["call_0", "call_1"]);
    let results: Vec<(String, bool)> = r.messages[2]
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolResult { id, is_error, .. } => Some((id.to_string(), *is_error)),
            _ => None,
        })
        .collect();
    assert_eq!(
        results,
        [("call_0".to_owned(), false), ("call_1".to_owned(), true)]
    );
    assert_eq!(r.tool_choice, Some(ToolChoice::Required));
    assert_eq!((r.temperature, r.max_tokens), (Some(0.1), Some(9)));
    assert!(matches!(
        r.response_format,
        Some(ResponseFormat::JsonObject)
    ));
    assert_eq!(r.reasoning, Some(Reasoning::Disabled));
    assert_eq!(r.ignored, ["safetySettings"]);
    assert!(r.include_usage && !r.stream && r.model.is_empty());
    let e = decode(r#"{"contents":[],"tools":[{"googleSearch":{}}]}"#).unwrap_err();
    assert!(e.message.contains("googleSearch"), "{}", e.message);
    assert!(decode(r#"{"contents":{}}"#).is_err());
}

#[test]
fn streams_end_with_calls_finish_and_usage() {
    let stamp = Stamp {
        model: "alias",
        created: 0,
        default_max_tokens: 0,
        id: "",
    };
    let mut enc = StreamEncoder::new(&stamp);
    let mut out = Vec::new();
    for ev in [
        Event::Start {
            id: "r".into(),
            model: "m".into(),
            usage: Usage::default(),
        },
        Event::Text("Hel".into()),
        Event::Text("lo".into()),
        Event::ToolCall {
            index: 0,
            id: "c".into(),
            name: "f".into(),
        },
        Event::ToolArguments {
            index: 0,
            fragment: "{\"a\"".into(),
        },
        Event::ToolArguments {
            index: 0,
            fragment: ":1}".into(),
        },
        Event::Finish {
            reason: Finish::ToolCalls,
            stop_sequence: None,
        },
        Event::Usage(Usage {
            input: 3,
            output: 4,
            cache_read: 1,
            ..Usage::default()
        }),
        Event::Done,
    ] {
        enc.encode(&ev, &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let chunks: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|c| c.strip_prefix("data: "))
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    assert_eq!(chunks.len(), 3);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["text"],
        "Hel"
    );
    let last = &chunks[2];
    let call = &last["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(
        (call["name"].as_str(), call["args"]["a"].as_u64()),
        (Some("f"), Some(1))
    );
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 7);
    assert_eq!(last["usageMetadata"]["cachedContentTokenCount"], 1);
    // The upstream names its model; that is reported, as the OpenAI ingress does.
    assert_eq!(last["modelVersion"], "m");
}

#[test]
fn errors_are_googles() {
    let mut out = Vec::new();
    Gemini.error_body(
        &GatewayError::new(Kind::ModelNotFound, "no such model"),
        &mut out,
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["code"], 404);
    assert_eq!(v["error"]["status"], "NOT_FOUND");
    out.clear();
    Gemini.error_body(&GatewayError::new(Kind::RateLimited, "slow down"), &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED");
}

#[test]
fn openapi_parameters_are_written_as_json_schema() {
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],
      "tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"OBJECT","propertyOrdering":["a","b"],
        "properties":{"a":{"type":"STRING","nullable":true,"enum":["X","Y"]},"b":{"type":"ARRAY","items":{"type":"INTEGER"}}},
        "required":["a"]}}]}]}"#;
    let mut b = body.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = decode_request(&v).unwrap();
    let mut out = Vec::new();
    r.tools[0].write_schema(&mut out);
    let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let want: serde_json::Value = serde_json::from_str(
        r#"{"type":"object","properties":{"a":{"type":["string","null"],"enum":["X","Y"]},
            "b":{"type":"array","items":{"type":"integer"}}},"required":["a"]}"#,
    )
    .unwrap();
    assert_eq!(got, want);
}
