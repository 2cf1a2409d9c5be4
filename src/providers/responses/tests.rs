use super::*;
use crate::error::Kind;
use crate::providers::canonical::{Finish, Message, Part, Role};

fn value(s: &[u8]) -> serde_json::Value {
    serde_json::from_slice(s).unwrap()
}

#[test]
fn a_translated_request_is_input_items_never_stored() {
    let r = ChatRequest {
        system: vec!["Be brief.".into()],
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::Text("hi".into())],
            },
            Message {
                role: Role::Assistant,
                parts: vec![Part::ToolCall {
                    id: "c1".into(),
                    name: "f".into(),
                    arguments: "{}".into(),
                }],
            },
            Message {
                role: Role::User,
                parts: vec![Part::ToolResult {
                    id: "c1".into(),
                    content: vec![Part::Text("ok".into())],
                    is_error: false,
                }],
            },
        ],
        max_tokens: Some(10),
        stop: vec!["X".into()],
        stream: true,
        ..ChatRequest::default()
    };
    let stamp = Stamp {
        model: "gpt-x",
        created: 0,
        default_max_tokens: 0,
        id: "",
    };
    let (mut out, mut dropped) = (Vec::new(), Vec::new());
    Responses.encode_request(&r, &stamp, &mut out, &mut dropped);
    let v = value(&out);
    assert_eq!(v["model"], "gpt-x");
    assert_eq!(v["instructions"], "Be brief.");
    assert_eq!(v["input"][0]["content"][0]["type"], "input_text");
    assert_eq!(v["input"][1]["type"], "function_call");
    assert_eq!(v["input"][2]["output"], "ok");
    assert_eq!(
        (v["max_output_tokens"].as_u64(), v["store"].as_bool()),
        (Some(10), Some(false))
    );
    assert_eq!(v["stream"], true);
    assert_eq!(dropped, ["stop"]);
}

#[test]
fn answers_and_streams_come_back_with_usage() {
    let mut b = br#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-x","output":[{"type":"reasoning","summary":[{"type":"summary_text","text":"hm"}]},{"type":"message","content":[{"type":"output_text","text":"Hi"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}],"usage":{"input_tokens":9,"input_tokens_details":{"cached_tokens":4},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2}}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = Responses.decode_response(&v).unwrap();
    assert_eq!(r.finish, Some(Finish::ToolCalls));
    assert_eq!(r.parts.len(), 3);
    assert_eq!(
        (r.usage.input, r.usage.cache_read, r.usage.reasoning),
        (9, 4, 2)
    );
    let mut failed =
        br#"{"status":"failed","error":{"code":"rate_limit_exceeded","message":"slow"}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut failed).unwrap();
    assert_eq!(
        Responses.decode_response(&v).unwrap_err().kind,
        Kind::UpstreamRateLimited
    );

    let mut d = StreamDecoder::default();
    let mut seen = Vec::new();
    for e in [
        r#"{"type":"response.created","response":{"id":"resp_1","model":"m"}}"#,
        r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","call_id":"c","name":"f","arguments":""}}"#,
        r#"{"type":"response.function_call_arguments.delta","output_index":0,"delta":"{}"}"#,
        r#"{"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":1,"output_tokens":2}}}"#,
    ] {
        let mut b = e.as_bytes().to_vec();
        d.decode(&mut b, &mut |ev| seen.push(format!("{ev:?}")))
            .unwrap();
    }
    assert!(seen[1].starts_with("ToolCall { index: 0"));
    assert!(seen[3].contains("ToolCalls"), "{seen:?}");
    assert_eq!(seen.last().unwrap(), "Done");
}

#[test]
fn state_and_server_tools_are_refused_with_reasons() {
    let refuse = |body: &str| {
        let mut b = body.as_bytes().to_vec();
        let v = simd_json::to_borrowed_value(&mut b).unwrap();
        ingress::decode_request(&v).unwrap_err().message
    };
    assert!(
        refuse(r#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#)
            .contains("whole conversation")
    );
    assert!(
        refuse(r#"{"model":"m","input":[{"type":"item_reference","id":"i"}]}"#)
            .contains("item_reference")
    );
    assert!(
        refuse(r#"{"model":"m","input":"x","tools":[{"type":"web_search"}]}"#)
            .contains("OpenAI's servers")
    );
    let mut b = br#"{"model":"m","instructions":"I","input":[{"role":"developer","content":"D"},{"role":"user","content":[{"type":"input_text","text":"q"},{"type":"input_image","image_url":"https://x/y.png"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"r"}],"store":true,"max_output_tokens":5,"reasoning":{"effort":"low"}}"#.to_vec();
    let v = simd_json::to_borrowed_value(&mut b).unwrap();
    let r = ingress::decode_request(&v).unwrap();
    assert_eq!(r.system, ["I", "D"]);
    assert_eq!(r.messages.len(), 3);
    assert_eq!(r.ignored, ["store"]);
    assert_eq!(r.max_tokens, Some(5));
}

#[test]
fn the_client_stream_is_numbered_and_ends_with_the_whole_response() {
    let stamp = Stamp {
        model: "alias",
        created: 7,
        default_max_tokens: 0,
        id: "",
    };
    let mut enc = Responses.stream_encoder(&stamp, true);
    let mut out = Vec::new();
    for ev in [
        Event::Start {
            id: "chatcmpl-9".into(),
            model: "m".into(),
            usage: Usage::default(),
        },
        Event::Text("Hi".into()),
        Event::ToolCall {
            index: 0,
            id: "c0".into(),
            name: "f".into(),
        },
        Event::ToolCall {
            index: 1,
            id: "c1".into(),
            name: "f".into(),
        },
        Event::ToolArguments {
            index: 0,
            fragment: "{}".into(),
        },
        Event::ToolArguments {
            index: 1,
            fragment: "{}".into(),
        },
        Event::Finish {
            reason: Finish::ToolCalls,
            stop_sequence: None,
        },
        Event::Usage(Usage {
            input: 3,
            output: 2,
            ..Usage::default()
        }),
        Event::Done,
    ] {
        enc.encode(&ev, &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let events: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], i as u64, "{e}");
    }
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(events[0]["response"]["id"], "resp_9");
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    let output = last["response"]["output"].as_array().unwrap();
    assert_eq!(output.len(), 3);
    assert_eq!(output[1]["call_id"], "c0");
    assert_eq!(last["response"]["usage"]["total_tokens"], 5);
    let deltas: Vec<u64> = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.delta")
        .map(|e| e["output_index"].as_u64().unwrap())
        .collect();
    assert_eq!(deltas, [1, 2]);
}
