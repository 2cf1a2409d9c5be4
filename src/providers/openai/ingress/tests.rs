//! Unit tests of `providers::openai::ingress`.

use super::*;

fn decoded(body: &str, check: impl FnOnce(Result<ChatRequest<'_>, GatewayError>)) {
    let mut bytes = body.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut bytes).expect("valid JSON");
    check(decode_request(&v));
}

fn error_of(body: &str) -> String {
    let mut message = String::new();
    decoded(body, |r| message = r.expect_err("rejected").message);
    message
}

#[test]
fn decodes_roles_tools_and_thinking() {
    let body = r#"{"model":"m","logit_bias":{"1":2},"logprobs":false,"store":true,
        "messages":[
          {"role":"developer","content":[{"type":"text","text":"be brief"}]},
          {"role":"user","content":[{"type":"text","text":"look"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}}]},
          {"role":"assistant","content":null,"reasoning_content":"ignored",
           "thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"},
                              {"type":"redacted_thinking","data":"r"}],
           "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"42"},
          {"role":"user","content":"thanks"}],
        "max_tokens":10,"max_completion_tokens":20,"stop":"END","reasoning_effort":"high",
        "tool_choice":{"type":"function","function":{"name":"f"}},"temperature":1,
        "stream":true,"stream_options":{"include_usage":true}}"#;
    decoded(body, |r| {
        let r = r.unwrap();
        assert_eq!(r.system, ["be brief"]);
        assert_eq!(r.messages.len(), 3);
        assert!(
            matches!(&r.messages[0].parts[1], Part::Image(Image::Base64 { media_type, .. }) if media_type == "image/png")
        );
        let a = &r.messages[1].parts;
        assert!(matches!(&a[0], Part::Thinking { signature: Some(s), .. } if s == "s"));
        assert!(matches!(&a[1], Part::RedactedThinking(_)));
        assert!(matches!(&a[2], Part::ToolCall { .. }));
        assert_eq!(r.messages[2].role, Role::User);
        assert!(matches!(&r.messages[2].parts[0], Part::ToolResult { id, .. } if id == "c1"));
        assert!(matches!(&r.messages[2].parts[1], Part::Text(t) if t == "thanks"));
        assert_eq!(r.max_tokens, Some(20));
        assert_eq!(r.temperature, Some(1.0));
        assert_eq!(r.stop, ["END"]);
        assert_eq!(r.reasoning, Some(Reasoning::Effort(Effort::High)));
        assert_eq!(r.tool_choice, Some(ToolChoice::Tool("f".into())));
        assert!(r.stream && r.include_usage);
        assert_eq!(r.ignored, ["logit_bias", "store"]);
    });
}

#[test]
fn rejections_name_the_path() {
    let with =
        |m: &str| format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}},{m}]}}"#);
    assert_eq!(
        error_of(&with(r#"{"role":"user","content":7}"#)),
        "messages[1].content: expected a string or an array of parts"
    );
    assert!(
        error_of(&with(r#"{"role":"function","name":"f","content":"x"}"#))
            .starts_with("messages[1].role")
    );
    assert!(
        error_of(&with(
            r#"{"role":"user","content":[{"type":"input_audio"}]}"#
        ))
        .starts_with("messages[1].content[0].type")
    );
    assert_eq!(
        error_of(r#"{"model":"m","messages":[]}"#),
        "messages: expected a non-empty array"
    );
    assert_eq!(
        error_of(r#"{"model":1,"messages":[]}"#),
        "model: expected a string"
    );
    assert!(
        error_of(
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}"#
        )
        .starts_with("reasoning_effort")
    );
}

fn response(parts: Vec<Part<'static>>) -> simd_json::OwnedValue {
    let r = ChatResponse {
        id: "msg_1".into(),
        model: "".into(),
        created: None,
        parts,
        finish: Some(Finish::Paused),
        stop_sequence: None,
        usage: Usage {
            input: 10,
            output: 2,
            cache_read: 4,
            ..Usage::default()
        },
    };
    let stamp = Stamp {
        model: "alias",
        created: 7,
        default_max_tokens: 1,
        id: "",
    };
    let mut out = Vec::new();
    encode_response(&r, &stamp, &mut out);
    simd_json::to_owned_value(&mut out).expect("valid JSON")
}

#[test]
fn encodes_a_response() {
    let v = response(vec![
        Part::Thinking {
            text: "hm".into(),
            signature: Some("sig".into()),
        },
        Part::Text("a".into()),
        Part::Text("b".into()),
    ]);
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "ab");
    assert_eq!(m["reasoning_content"], "hm");
    assert_eq!(m["thinking_blocks"][0]["signature"], "sig");
    assert!(m.get("tool_calls").is_none());
    assert_eq!(v["model"], "alias");
    assert_eq!(v["created"], 7);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 12);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    let v = response(vec![]);
    assert!(v["choices"][0]["message"]["content"].is_null());
}

#[test]
fn stream_starts_itself_and_ends_with_usage() {
    let stamp = Stamp {
        model: "alias",
        created: 7,
        default_max_tokens: 1,
        id: "",
    };
    let mut e = StreamEncoder::new(&stamp, true);
    let mut out = Vec::new();
    e.encode(&Event::Text("hi".into()), &mut out);
    e.encode(&Event::Ping, &mut out);
    e.encode(
        &Event::ToolArguments {
            index: 1,
            fragment: "{\"a".into(),
        },
        &mut out,
    );
    e.encode(
        &Event::Usage(Usage {
            input: 3,
            output: 4,
            ..Usage::default()
        }),
        &mut out,
    );
    e.encode(&Event::Done, &mut out);
    let text = String::from_utf8(out).unwrap();
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    assert_eq!(events.len(), 5, "{text}");
    assert!(
        events[0].contains(r#""id":"chatcmpl-shardgate""#)
            && events[0].contains(r#""role":"assistant""#)
    );
    assert!(events[1].contains(r#""delta":{"content":"hi"}"#));
    assert!(events[2].contains(r#"{"index":1,"function":{"arguments":"{\"a"}}"#));
    assert!(events[3].contains(
        r#""choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7"#
    ));
    assert_eq!(events[4], "data: [DONE]");
}
