//! The four client protocols as the conformance suite speaks them: each builds the suite's
//! requests in its own wire form and reads any answer, whole or streamed, back into one
//! [`Answer`], so every (ingress, upstream) pair is checked against the same expectations.

use serde_json::{Value, json};

/// A client protocol the gateway serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    Chat,
    Responses,
    Messages,
    Gemini,
}

pub const INGRESSES: [Ingress; 4] = [
    Ingress::Chat,
    Ingress::Responses,
    Ingress::Messages,
    Ingress::Gemini,
];

/// What a case asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// One user turn.
    Text,
    /// One user turn with a tool defined (the `-tools` upstreams answer two calls).
    Tools,
    /// System prompt, an image, an earlier tool call and its result, a second user turn,
    /// tool choice, sampling settings, a stop sequence and an end user: everything at once.
    Rich,
}

/// An answer, whatever protocol it came in.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Answer {
    pub text: String,
    /// (name, arguments as JSON)
    pub calls: Vec<(String, Value)>,
    /// `end`, `tools` or `length`.
    pub finish: String,
    pub input: u64,
    pub output: u64,
    pub cached: u64,
}

fn weather_schema() -> Value {
    json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]})
}

/// One pixel's worth of PNG magic: enough for every encoder to carry as an image.
const PNG: &str = "iVBORw0KGgo=";
const ASK: &str = "What is in this image, and the weather?";

impl Ingress {
    pub fn name(self) -> &'static str {
        match self {
            Ingress::Chat => "OpenAI Chat",
            Ingress::Responses => "OpenAI Responses",
            Ingress::Messages => "Anthropic",
            Ingress::Gemini => "Gemini",
        }
    }

    /// The path and body of a request for `alias`.
    pub fn request(self, alias: &str, ask: Ask, stream: bool) -> (String, Value) {
        match self {
            Ingress::Chat => ("/v1/chat/completions".into(), chat(alias, ask, stream)),
            Ingress::Responses => ("/v1/responses".into(), responses(alias, ask, stream)),
            Ingress::Messages => ("/v1/messages".into(), messages(alias, ask, stream)),
            Ingress::Gemini => {
                let verb = if stream {
                    "streamGenerateContent?alt=sse"
                } else {
                    "generateContent"
                };
                (format!("/v1beta/models/{alias}:{verb}"), gemini(ask))
            }
        }
    }

    /// Reads a whole 2xx answer.
    pub fn whole(self, v: &Value) -> Answer {
        match self {
            Ingress::Chat => chat_whole(v),
            Ingress::Responses => responses_whole(v),
            Ingress::Messages => messages_whole(v),
            Ingress::Gemini => gemini_chunks(std::slice::from_ref(v)),
        }
    }

    /// Reads a stream's `data:` payloads (as JSON; `[DONE]` is skipped).
    pub fn stream(self, events: &[Value]) -> Answer {
        match self {
            Ingress::Chat => chat_stream(events),
            Ingress::Responses => {
                let text: String = events
                    .iter()
                    .filter(|e| e["type"] == "response.output_text.delta")
                    .filter_map(|e| e["delta"].as_str())
                    .collect();
                let done = events.iter().rev().find(|e| {
                    e["type"] == "response.completed" || e["type"] == "response.incomplete"
                });
                let mut a = done
                    .map(|e| responses_whole(&e["response"]))
                    .unwrap_or_default();
                assert_eq!(a.text, text, "the deltas add up to the completed response");
                let mut args: Vec<(String, String)> = Vec::new();
                for e in events {
                    if e["type"] == "response.output_item.added"
                        && e["item"]["type"] == "function_call"
                    {
                        args.push((
                            e["item"]["name"].as_str().unwrap_or("").into(),
                            String::new(),
                        ));
                    }
                    if e["type"] == "response.function_call_arguments.delta"
                        && let Some(last) = args.last_mut()
                    {
                        last.1.push_str(e["delta"].as_str().unwrap_or(""));
                    }
                }
                let streamed: Vec<(String, Value)> = args
                    .into_iter()
                    .map(|(n, a)| (n, serde_json::from_str(&a).unwrap_or(Value::Null)))
                    .collect();
                assert_eq!(
                    streamed, a.calls,
                    "the argument deltas add up to the completed calls"
                );
                a.text = text;
                a
            }
            Ingress::Messages => messages_stream(events),
            Ingress::Gemini => gemini_chunks(events),
        }
    }

    /// Whether an error answer is this protocol's rate-limit error.
    pub fn is_rate_limit(self, status: u16, v: &Value) -> bool {
        status == 429
            && match self {
                Ingress::Chat | Ingress::Responses => v["error"]["message"].is_string(),
                Ingress::Messages => {
                    v["type"] == "error" && v["error"]["type"] == "rate_limit_error"
                }
                Ingress::Gemini => {
                    v["error"]["status"] == "RESOURCE_EXHAUSTED" && v["error"]["code"] == 429
                }
            }
    }
}

// === requests ===

fn chat(alias: &str, ask: Ask, stream: bool) -> Value {
    let tool = json!([{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":weather_schema()}}]);
    let mut v = match ask {
        Ask::Text => json!({"model":alias,"messages":[{"role":"user","content":"Say hello"}]}),
        Ask::Tools => {
            json!({"model":alias,"messages":[{"role":"user","content":"Weather?"}],"tools":tool})
        }
        Ask::Rich => json!({"model":alias,
            "messages":[
                {"role":"system","content":"Be brief."},
                {"role":"user","content":[{"type":"text","text":ASK},
                    {"type":"image_url","image_url":{"url":format!("data:image/png;base64,{PNG}")}}]},
                {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                    "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
                {"role":"tool","tool_call_id":"call_1","content":"sunny"},
                {"role":"user","content":"Thanks. And tomorrow?"}],
            "tools":tool,"tool_choice":"auto","temperature":0.2,"top_p":0.9,"stop":["END"],
            "max_tokens":64,"user":"u-1"}),
    };
    if stream {
        v["stream"] = json!(true);
        v["stream_options"] = json!({"include_usage":true});
    }
    v
}

fn responses(alias: &str, ask: Ask, stream: bool) -> Value {
    let tool = json!([{"type":"function","name":"get_weather","description":"Weather","parameters":weather_schema()}]);
    let mut v = match ask {
        Ask::Text => json!({"model":alias,"input":"Say hello"}),
        Ask::Tools => json!({"model":alias,"input":"Weather?","tools":tool}),
        Ask::Rich => json!({"model":alias,"instructions":"Be brief.",
            "input":[
                {"role":"user","content":[{"type":"input_text","text":ASK},
                    {"type":"input_image","image_url":format!("data:image/png;base64,{PNG}")}]},
                {"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
                {"type":"function_call_output","call_id":"call_1","output":"sunny"},
                {"role":"user","content":"Thanks. And tomorrow?"}],
            "tools":tool,"tool_choice":"auto","temperature":0.2,"top_p":0.9,
            "max_output_tokens":64,"user":"u-1","store":false}),
    };
    if stream {
        v["stream"] = json!(true);
    }
    v
}

fn messages(alias: &str, ask: Ask, stream: bool) -> Value {
    let tool =
        json!([{"name":"get_weather","description":"Weather","input_schema":weather_schema()}]);
    let mut v = match ask {
        Ask::Text => {
            json!({"model":alias,"max_tokens":64,"messages":[{"role":"user","content":"Say hello"}]})
        }
        Ask::Tools => {
            json!({"model":alias,"max_tokens":64,"messages":[{"role":"user","content":"Weather?"}],"tools":tool})
        }
        Ask::Rich => json!({"model":alias,"max_tokens":64,"system":"Be brief.",
            "messages":[
                {"role":"user","content":[{"type":"text","text":ASK},
                    {"type":"image","source":{"type":"base64","media_type":"image/png","data":PNG}}]},
                {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"sunny"},
                    {"type":"text","text":"Thanks. And tomorrow?"}]}],
            "tools":tool,"tool_choice":{"type":"auto"},"temperature":0.2,"top_p":0.9,
            "stop_sequences":["END"],"metadata":{"user_id":"u-1"}}),
    };
    if stream {
        v["stream"] = json!(true);
    }
    v
}

fn gemini(ask: Ask) -> Value {
    let tool = json!([{"functionDeclarations":[{"name":"get_weather","description":"Weather","parametersJsonSchema":weather_schema()}]}]);
    match ask {
        Ask::Text => json!({"contents":[{"role":"user","parts":[{"text":"Say hello"}]}]}),
        Ask::Tools => {
            json!({"contents":[{"role":"user","parts":[{"text":"Weather?"}]}],"tools":tool})
        }
        Ask::Rich => json!({"systemInstruction":{"parts":[{"text":"Be brief."}]},
            "contents":[
                {"role":"user","parts":[{"text":ASK},{"inlineData":{"mimeType":"image/png","data":PNG}}]},
                {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]},
                {"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"result":"sunny"}}},
                    {"text":"Thanks. And tomorrow?"}]}],
            "tools":tool,"toolConfig":{"functionCallingConfig":{"mode":"AUTO"}},
            "generationConfig":{"temperature":0.2,"topP":0.9,"stopSequences":["END"],"maxOutputTokens":64}}),
    }
}

// === answers ===

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn args(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn chat_finish(f: &str) -> String {
    match f {
        "stop" => "end",
        "tool_calls" => "tools",
        "length" => "length",
        other => other,
    }
    .into()
}

fn chat_whole(v: &Value) -> Answer {
    let c = &v["choices"][0];
    Answer {
        text: c["message"]["content"].as_str().unwrap_or("").into(),
        calls: c["message"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let f = &t["function"];
                (
                    f["name"].as_str().unwrap_or("").into(),
                    args(f["arguments"].as_str().unwrap_or("")),
                )
            })
            .collect(),
        finish: chat_finish(c["finish_reason"].as_str().unwrap_or("")),
        input: n(&v["usage"]["prompt_tokens"]),
        output: n(&v["usage"]["completion_tokens"]),
        cached: n(&v["usage"]["prompt_tokens_details"]["cached_tokens"]),
    }
}

fn chat_stream(events: &[Value]) -> Answer {
    let mut a = Answer::default();
    let mut calls: Vec<(String, String)> = Vec::new();
    for e in events {
        for c in e["choices"].as_array().into_iter().flatten() {
            let d = &c["delta"];
            a.text.push_str(d["content"].as_str().unwrap_or(""));
            for t in d["tool_calls"].as_array().into_iter().flatten() {
                let i = n(&t["index"]) as usize;
                if calls.len() <= i {
                    calls.resize(i + 1, (String::new(), String::new()));
                }
                if let Some(name) = t["function"]["name"].as_str() {
                    calls[i].0 = name.into();
                }
                calls[i]
                    .1
                    .push_str(t["function"]["arguments"].as_str().unwrap_or(""));
            }
            if let Some(f) = c["finish_reason"].as_str() {
                a.finish = chat_finish(f);
            }
        }
        if e["usage"].is_object() {
            a.input = n(&e["usage"]["prompt_tokens"]);
            a.output = n(&e["usage"]["completion_tokens"]);
            a.cached = n(&e["usage"]["prompt_tokens_details"]["cached_tokens"]);
        }
    }
    a.calls = calls.into_iter().map(|(n, t)| (n, args(&t))).collect();
    a
}

fn responses_whole(v: &Value) -> Answer {
    let mut a = Answer::default();
    for o in v["output"].as_array().into_iter().flatten() {
        match o["type"].as_str() {
            Some("message") => {
                for c in o["content"].as_array().into_iter().flatten() {
                    a.text.push_str(c["text"].as_str().unwrap_or(""));
                }
            }
            Some("function_call") => a.calls.push((
                o["name"].as_str().unwrap_or("").into(),
                args(o["arguments"].as_str().unwrap_or("")),
            )),
            _ => {}
        }
    }
    a.finish = match (
        v["status"].as_str(),
        v["incomplete_details"]["reason"].as_str(),
    ) {
        (Some("incomplete"), Some("max_output_tokens")) => "length".into(),
        (Some("completed"), _) if !a.calls.is_empty() => "tools".into(),
        (Some("completed"), _) => "end".into(),
        (s, r) => format!("{s:?}/{r:?}"),
    };
    a.input = n(&v["usage"]["input_tokens"]);
    a.output = n(&v["usage"]["output_tokens"]);
    a.cached = n(&v["usage"]["input_tokens_details"]["cached_tokens"]);
    a
}

fn messages_finish(f: &str) -> String {
    match f {
        "end_turn" | "stop_sequence" => "end",
        "tool_use" => "tools",
        "max_tokens" => "length",
        other => other,
    }
    .into()
}

fn messages_whole(v: &Value) -> Answer {
    let mut a = Answer::default();
    for b in v["content"].as_array().into_iter().flatten() {
        match b["type"].as_str() {
            Some("text") => a.text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => a
                .calls
                .push((b["name"].as_str().unwrap_or("").into(), b["input"].clone())),
            _ => {}
        }
    }
    a.finish = messages_finish(v["stop_reason"].as_str().unwrap_or(""));
    let u = &v["usage"];
    a.cached = n(&u["cache_read_input_tokens"]);
    a.input = n(&u["input_tokens"]) + a.cached + n(&u["cache_creation_input_tokens"]);
    a.output = n(&u["output_tokens"]);
    a
}

fn messages_stream(events: &[Value]) -> Answer {
    let mut a = Answer::default();
    let mut calls: Vec<(String, String)> = Vec::new();
    for e in events {
        match e["type"].as_str() {
            Some("message_start") => {
                let u = &e["message"]["usage"];
                a.cached = n(&u["cache_read_input_tokens"]);
                a.input = n(&u["input_tokens"]) + a.cached + n(&u["cache_creation_input_tokens"]);
            }
            Some("content_block_start") if e["content_block"]["type"] == "tool_use" => {
                calls.push((
                    e["content_block"]["name"].as_str().unwrap_or("").into(),
                    String::new(),
                ));
            }
            Some("content_block_delta") => {
                let d = &e["delta"];
                a.text.push_str(d["text"].as_str().unwrap_or(""));
                if let (Some(p), Some(last)) = (d["partial_json"].as_str(), calls.last_mut()) {
                    last.1.push_str(p);
                }
            }
            Some("message_delta") => {
                a.finish = messages_finish(e["delta"]["stop_reason"].as_str().unwrap_or(""));
                let u = &e["usage"];
                a.output = n(&u["output_tokens"]);
                // The final counts, when the delta carries the prompt's too (a translated
                // stream learns them only at its end).
                if u["input_tokens"].is_u64() {
                    a.cached = n(&u["cache_read_input_tokens"]);
                    a.input =
                        n(&u["input_tokens"]) + a.cached + n(&u["cache_creation_input_tokens"]);
                }
            }
            _ => {}
        }
    }
    a.calls = calls
        .into_iter()
        .map(|(n, t)| (n, args(if t.is_empty() { "{}" } else { &t })))
        .collect();
    a
}

fn gemini_chunks(chunks: &[Value]) -> Answer {
    let mut a = Answer::default();
    for c in chunks {
        let cand = &c["candidates"][0];
        for p in cand["content"]["parts"].as_array().into_iter().flatten() {
            if p["thought"] == true {
                continue;
            }
            a.text.push_str(p["text"].as_str().unwrap_or(""));
            if p["functionCall"].is_object() {
                let f = &p["functionCall"];
                a.calls
                    .push((f["name"].as_str().unwrap_or("").into(), f["args"].clone()));
            }
        }
        if let Some(f) = cand["finishReason"].as_str() {
            a.finish = match f {
                "STOP" => "end".into(),
                "MAX_TOKENS" => "length".into(),
                other => other.into(),
            };
        }
        let u = &c["usageMetadata"];
        if u.is_object() {
            a.input = n(&u["promptTokenCount"]);
            a.output = n(&u["candidatesTokenCount"]) + n(&u["thoughtsTokenCount"]);
            a.cached = n(&u["cachedContentTokenCount"]);
        }
    }
    if !a.calls.is_empty() && a.finish == "end" {
        a.finish = "tools".into(); // Gemini says STOP for an answer of function calls
    }
    a
}
