//! Unit tests of `providers::cohere::stream`.

use super::*;
use crate::error::Kind;

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

const START: &str = r#"{"type":"message-start","id":"m1","delta":{"message":{"role":"assistant","content":[],"tool_plan":"","tool_calls":[],"citations":[]}}}"#;

#[test]
fn text_streams_and_message_end_ends_it() {
    let (seen, r) = streamed(&[
        START,
        r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"text","text":""}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"Hel"}}},"logprobs":null}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"text":"lo"}}}}"#,
        r#"{"type":"citation-start","index":0,"delta":{"message":{"citations":{"start":0,"end":3,"text":"Hel","sources":[]}}}}"#,
        r#"{"type":"citation-end","index":0}"#,
        r#"{"type":"content-end","index":0}"#,
        r#"{"type":"message-end","delta":{"finish_reason":"COMPLETE","usage":{"billed_units":{"input_tokens":3,"output_tokens":2},"tokens":{"input_tokens":70,"output_tokens":2}}}}"#,
        "[DONE]",
    ]);
    r.unwrap();
    assert_eq!(
        seen,
        [
            r#"Start { id: "m1", model: "", usage: Usage { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0 } }"#,
            r#"Text("Hel")"#,
            r#"Text("lo")"#,
            "Finish { reason: EndTurn, stop_sequence: None }",
            "Usage(Usage { input: 70, output: 2, cache_read: 0, cache_write: 0, reasoning: 0 })",
            "Done",
        ],
        "a [DONE] after message-end ends nothing more"
    );
}

#[test]
fn thinking_and_the_tool_plan_stream() {
    let (seen, r) = streamed(&[
        START,
        r#"{"type":"content-start","index":0,"delta":{"message":{"content":{"type":"thinking","thinking":""}}}}"#,
        r#"{"type":"content-delta","index":0,"delta":{"message":{"content":{"thinking":"hm"}}}}"#,
        r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":"I will"}}}"#,
        r#"{"type":"tool-plan-delta","delta":{"message":{"tool_plan":""}}}"#,
    ]);
    r.unwrap();
    assert_eq!(seen[1..], [r#"Thinking("hm")"#, r#"Text("I will")"#]);
}

#[test]
fn tool_calls_split_over_many_deltas_are_numbered_in_order() {
    let delta = |i: u32, a: &str| {
        format!(
            r#"{{"type":"tool-call-delta","index":{i},"delta":{{"message":{{"tool_calls":{{"function":{{"arguments":{a:?}}}}}}}}}}}"#
        )
    };
    let mut events = vec![
        START.to_string(),
        r#"{"type":"tool-call-start","index":3,"delta":{"message":{"tool_calls":{"id":"get_weather_1","type":"function","function":{"name":"get_weather","arguments":""}}}}}"#.to_string(),
    ];
    events.extend(
        ["{\n    \"", "location", "\":", " \"", "Madrid", "\"", "\n}"].map(|a| delta(3, a)),
    );
    events.push(r#"{"type":"tool-call-end","index":3}"#.into());
    events.push(r#"{"type":"tool-call-start","index":4,"delta":{"message":{"tool_calls":{"type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}}}}}"#.into());
    events.push(delta(4, "\"UTC\"}"));
    // A fragment without an index belongs to the latest call.
    events.push(r#"{"type":"tool-call-delta","delta":{"message":{"tool_calls":{"function":{"arguments":" "}}}}}"#.into());
    events.push(r#"{"type":"message-end","delta":{"finish_reason":"TOOL_CALL","usage":{"tokens":{"input_tokens":913,"output_tokens":83}}}}"#.into());
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let (seen, r) = streamed(&refs);
    r.unwrap();
    assert_eq!(
        seen[1],
        r#"ToolCall { index: 0, id: "get_weather_1", name: "get_weather" }"#
    );
    let args: String = seen
        .iter()
        .filter(|s| s.starts_with("ToolArguments { index: 0"))
        .count()
        .to_string();
    assert_eq!(args, "7", "{seen:#?}");
    assert_eq!(
        seen[9],
        r#"ToolCall { index: 1, id: "call_1", name: "get_time" }"#
    );
    assert_eq!(
        seen[10],
        r#"ToolArguments { index: 1, fragment: "{\"tz\":" }"#
    );
    assert_eq!(seen[12], r#"ToolArguments { index: 1, fragment: " " }"#);
    assert!(seen[13].starts_with("Finish { reason: ToolCalls"));
    assert!(seen[14].contains("input: 913, output: 83"));
    assert_eq!(seen[15], "Done");
}

#[test]
fn failures_are_errors_without_an_end() {
    let (seen, r) = streamed(&[
        START,
        r#"{"type":"message-end","delta":{"error":"internal failure","finish_reason":"ERROR","usage":{"tokens":{"input_tokens":4,"output_tokens":1}}}}"#,
    ]);
    r.unwrap();
    assert!(seen[1].contains("input: 4, output: 1"), "{seen:?}");
    assert_eq!(
        seen[2],
        r#"Error { kind: UpstreamServer, message: "cohere: internal failure" }"#
    );
    assert_eq!(seen.len(), 3, "no Finish and no Done: {seen:?}");
    let (seen, _) = streamed(&[r#"{"type":"message-end","delta":{"finish_reason":"ERROR"}}"#]);
    assert_eq!(
        seen,
        [r#"Error { kind: UpstreamServer, message: "cohere: the generation failed" }"#]
    );
    let (seen, _) = streamed(&[r#"{"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}"#]);
    assert!(
        seen[0].starts_with("Error { kind: UpstreamTimeout"),
        "{seen:?}"
    );
    let (seen, _) = streamed(&[START, r#"{"id":"e1","message":"upstream overloaded"}"#]);
    assert_eq!(
        seen[1],
        r#"Error { kind: UpstreamServer, message: "cohere: upstream overloaded" }"#
    );
    assert_eq!(Kind::UpstreamServer.status(), 502);
}

#[test]
fn broken_streams_are_protocol_errors_not_panics() {
    for events in [
        &["{not json"][..],
        &[
            START,
            r#"{"type":"tool-call-delta","index":3,"delta":{"message":{"tool_calls":{"function":{"arguments":"x"}}}}}"#,
        ],
        &[
            START,
            r#"{"type":"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"c"}}}}"#,
        ],
    ] {
        let (_, r) = streamed(events);
        assert_eq!(r.unwrap_err().kind, Kind::UpstreamProtocol, "{events:?}");
    }
    // Blank data, unknown events and shapes with nothing to carry pass quietly.
    let (seen, r) = streamed(&[
        "",
        r#"{"type":"debug","prompt":"…"}"#,
        r#"{"type":"content-delta"}"#,
        r#"{"type":"tool-call-delta","index":0}"#,
        "[1,2]",
    ]);
    r.unwrap();
    assert!(seen.is_empty(), "{seen:?}");
}

#[test]
fn a_done_without_message_end_still_ends() {
    let (seen, r) = streamed(&[START, "[DONE]", "[DONE]"]);
    r.unwrap();
    assert_eq!(seen[1..], ["Done"]);
}
