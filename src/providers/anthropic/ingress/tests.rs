//! Unit tests of `providers::anthropic::ingress`.

use super::*;

fn decode(body: &str) -> Result<String, GatewayError> {
    let mut b = body.as_bytes().to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    decode_request(&v).map(|r| format!("{r:?}"))
}

fn error_of(body: &str) -> String {
    let e = decode(body).unwrap_err();
    assert_eq!(e.kind, Kind::BadRequest);
    e.message
}

#[test]
fn requires_max_tokens_and_names_paths() {
    assert_eq!(
        error_of(r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#),
        "max_tokens: field required"
    );
    assert_eq!(
        error_of(r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}"#),
        "max_tokens: must be at least 1"
    );
    assert_eq!(
        error_of(
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"foo"}]}]}"#
        ),
        "messages[1].content[0].type: unknown block type \"foo\""
    );
    assert_eq!(
        error_of(
            r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}"#
        ),
        "messages[0].content[0].type: \"document\" blocks are not supported for this upstream"
    );
    assert_eq!(
        error_of(r#"{"model":"m","max_tokens":5,"messages":[]}"#),
        "messages: at least one message is required"
    );
}

#[test]
fn tool_use_input_is_carried_as_json_text_and_extras_are_ignored() {
    let mut b = br#"{"model":"m","max_tokens":5,"service_tier":"auto",
        "tools":[{"type":"web_search_20250305","name":"web_search"},{"name":"f","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}}],
        "messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":[1,2]}}]}]}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = decode_request(&v).unwrap();
    assert!(
        matches!(&r.messages[0].parts[0], Part::ToolCall { arguments, .. } if arguments == r#"{"a":[1,2]}"#)
    );
    assert_eq!(r.tools.len(), 1);
    assert_eq!(
        r.ignored,
        [
            "tools[].web_search_20250305",
            "cache_control",
            "service_tier"
        ]
    );
    assert!(r.include_usage);
}

#[test]
fn response_usage_excludes_cached_tokens_and_bad_arguments_become_empty() {
    let r = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "".into(),
        created: None,
        parts: vec![Part::ToolCall {
            id: "call_1".into(),
            name: "f".into(),
            arguments: "{\"a\":".into(),
        }],
        finish: Some(Finish::ToolCalls),
        stop_sequence: None,
        usage: Usage {
            input: 10,
            output: 2,
            cache_read: 4,
            ..Usage::default()
        },
    };
    let stamp = Stamp {
        model: "gpt",
        created: 0,
        default_max_tokens: 1,
        id: "",
    };
    let mut out = Vec::new();
    encode_response(&r, &stamp, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"id":"chatcmpl-1","type":"message","role":"assistant","model":"gpt","content":[{"type":"tool_use","id":"call_1","name":"f","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":6,"output_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":4}}"#
    );
}

fn names(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("event: "))
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let index = data.split("\"index\":").nth(1).map(|s| &s[..1]);
            format!("{name}{}", index.unwrap_or(""))
        })
        .collect()
}

#[test]
fn stream_queues_a_second_tool_until_the_first_closes() {
    let stamp = Stamp {
        model: "gpt",
        created: 0,
        default_max_tokens: 1,
        id: "",
    };
    let mut e = StreamEncoder::new(&stamp, true);
    let mut out = Vec::new();
    let tool = |index, id: &'static str| Event::ToolCall {
        index,
        id: id.into(),
        name: "f".into(),
    };
    let args = |index, s: &'static str| Event::ToolArguments {
        index,
        fragment: s.into(),
    };
    for ev in [
        Event::Text("hi".into()),
        tool(0, "a"),
        tool(1, "b"),
        args(1, "{}"),
        args(0, "{}"),
        Event::Done,
        Event::Text("late".into()),
    ] {
        e.encode(&ev, &mut out);
    }
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start0",
            "content_block_delta0",
            "content_block_stop0",
            "content_block_start1",
            "content_block_delta1",
            "content_block_stop1",
            "content_block_start2",
            "content_block_delta2",
            "content_block_stop2",
            "message_delta",
            "message_stop",
        ]
    );
    assert!(String::from_utf8_lossy(&out).contains("\"id\":\"msg_shardgate\""));
}
