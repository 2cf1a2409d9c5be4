//! A request split for the semantic cache: the text of its last turn, when that turn is the
//! user's, and a hash of everything else (the *context*). Two requests with the same context
//! differ at most in what the user last wrote, which is what the embedding compares.
//!
//! Per client protocol, the last turn is: OpenAI Chat Completions' and Anthropic's last
//! `messages` entry with role `user`; the Responses API's `input` when it is a string, else its
//! last item with role `user`; Gemini's last `contents` entry with role `user` or none. Its
//! text is its string content, or its text parts (`text`, `input_text`) joined by newlines.
//! Every other part (images, files, tool results) stays in the context, so two requests
//! with another image never share it; a turn with no text at all, or only blank text, gives
//! no split, and such a request does not use the semantic cache.
//!
//! The context is the cache key's body hash ([`crate::cache::key::body_masked`]) with that
//! turn's text strings masked: the same canonical form, members ignored and defaults skipped
//! as for the exact key.

use simd_json::prelude::*;
use simd_json::tape::{Object, Value};

use crate::cache::key;
use crate::providers::translate::Wire;

/// A request's last user turn and the hash of the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The text to embed.
    pub text: String,
    /// The body's hash without that text (part of the scope).
    pub context: [u64; 2],
}

/// Splits a decoded request body of protocol `wire`; `None` when its last turn is not a user
/// turn with text.
pub fn split(root: &Object<'_, '_>, wire: Wire) -> Option<Split> {
    let texts = match wire {
        Wire::OpenAi | Wire::Anthropic => {
            let last = last(root.get("messages")?)?.as_object()?;
            (role(&last)? == "user").then_some(())?;
            content(last.get("content")?, &["text"])?
        }
        Wire::Responses => {
            let input = root.get("input")?;
            match input.into_string() {
                Some(s) => vec![s],
                None => {
                    let last = last(input)?.as_object()?;
                    let kind = last.get("type").and_then(|t| t.into_string());
                    (role(&last)? == "user" && kind.is_none_or(|k| k == "message")).then_some(())?;
                    content(last.get("content")?, &["input_text", "text"])?
                }
            }
        }
        Wire::Gemini => {
            let last = last(root.get("contents")?)?.as_object()?;
            role(&last).is_none_or(|r| r == "user").then_some(())?;
            let parts = last.get("parts")?;
            let mut texts = Vec::new();
            for p in parts.as_array()?.iter() {
                let p = p.as_object()?;
                // A thought is the model's, never the user's.
                if p.get("thought").and_then(|t| t.as_bool()) == Some(true) {
                    continue;
                }
                texts.extend(p.get("text").and_then(|t| t.into_string()));
            }
            texts
        }
    };
    if texts.iter().all(|t| t.trim().is_empty()) {
        return None;
    }
    Some(Split {
        text: texts.join("\n"),
        context: key::body_masked(root, &texts),
    })
}

fn last<'t, 'i>(list: Value<'t, 'i>) -> Option<Value<'t, 'i>> {
    list.as_array()?.iter().last()
}

fn role<'i>(turn: &Object<'_, 'i>) -> Option<&'i str> {
    turn.get("role")?.into_string()
}

/// A turn's text strings: its content when a string, else its parts of a `type` in `kinds`.
fn content<'i>(content: Value<'_, 'i>, kinds: &[&str]) -> Option<Vec<&'i str>> {
    if let Some(s) = content.into_string() {
        return Some(vec![s]);
    }
    let mut texts = Vec::new();
    for part in content.as_array()?.iter() {
        let Some(part) = part.as_object() else {
            continue;
        };
        let kind = part.get("type").and_then(|t| t.into_string());
        if kind.is_some_and(|k| kinds.contains(&k)) {
            texts.extend(part.get("text").and_then(|t| t.into_string()));
        }
    }
    Some(texts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_of(json: &str, wire: Wire) -> Option<Split> {
        let mut d = crate::pipeline::decode::Decoder::default();
        d.parse(json.as_bytes(), |v| split(&v.as_object()?, wire))
            .expect("valid JSON")
    }

    fn text(json: &str, wire: Wire) -> Option<String> {
        split_of(json, wire).map(|s| s.text)
    }

    fn context(json: &str, wire: Wire) -> [u64; 2] {
        split_of(json, wire).expect("a user turn").context
    }

    #[test]
    fn openai_chat() {
        let w = Wire::OpenAi;
        let s = r#"{"model":"a","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"What is Rust?"}]}"#;
        assert_eq!(text(s, w).as_deref(), Some("What is Rust?"));
        let parts = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"one"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"two"}]}]}"#;
        assert_eq!(text(parts, w).as_deref(), Some("one\ntwo"));
        // Escapes are read, and an escaped text is masked like any other.
        let escaped = r#"{"messages":[{"role":"user","content":"What\u0027s \"Rust\"?"}]}"#;
        assert_eq!(text(escaped, w).as_deref(), Some("What's \"Rust\"?"));
        let plain = r#"{"messages":[{"role":"user","content":"plain"}]}"#;
        assert_eq!(context(escaped, w), context(plain, w));
        for none in [
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#,
            r#"{"messages":[{"role":"tool","tool_call_id":"c","content":"42"}]}"#,
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
            r#"{"messages":[{"role":"user","content":"  "}]}"#,
            r#"{"messages":[]}"#,
            r#"{"prompt":"hi"}"#,
        ] {
            assert_eq!(text(none, w), None, "{none}");
        }
    }

    #[test]
    fn anthropic() {
        let w = Wire::Anthropic;
        let s = r#"{"system":"s","messages":[{"role":"user","content":"hello"}],"max_tokens":9}"#;
        assert_eq!(text(s, w).as_deref(), Some("hello"));
        let blocks = r#"{"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b","cache_control":{"type":"ephemeral"}}]}]}"#;
        assert_eq!(text(blocks, w).as_deref(), Some("a\nb"));
        let tool = r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"42"}]}]}"#;
        assert_eq!(text(tool, w), None);
        let image = r#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA"}}]}]}"#;
        assert_eq!(text(image, w), None);
    }

    #[test]
    fn responses() {
        let w = Wire::Responses;
        assert_eq!(
            text(r#"{"model":"a","input":"tell me"}"#, w).as_deref(),
            Some("tell me")
        );
        let items = r#"{"input":[{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"type":"message","role":"user","content":[{"type":"input_text","text":"second"},{"type":"input_image","image_url":"x"}]}]}"#;
        assert_eq!(text(items, w).as_deref(), Some("second"));
        let tool = r#"{"input":[{"role":"user","content":"q"},{"type":"function_call_output","call_id":"c","output":"42"}]}"#;
        assert_eq!(text(tool, w), None);
        assert_eq!(text(r#"{"input":[]}"#, w), None);
    }

    #[test]
    fn gemini() {
        let w = Wire::Gemini;
        let s = r#"{"contents":[{"role":"user","parts":[{"text":"hi"}]},{"role":"model","parts":[{"text":"hello"}]},{"parts":[{"text":"how"},{"inlineData":{"mimeType":"image/png","data":"AA"}},{"text":"are you"}]}]}"#;
        assert_eq!(text(s, w).as_deref(), Some("how\nare you"));
        let model = r#"{"contents":[{"role":"model","parts":[{"text":"hello"}]}]}"#;
        assert_eq!(text(model, w), None);
        let call = r#"{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#;
        assert_eq!(text(call, w), None);
    }

    #[test]
    fn only_the_last_user_text_is_left_out_of_the_context() {
        let w = Wire::OpenAi;
        let body = |system: &str, earlier: &str, last: &str, extra: &str| {
            format!(
                r#"{{"model":"a","messages":[{{"role":"system","content":"{system}"}},{{"role":"user","content":"{earlier}"}},{{"role":"assistant","content":"ok"}},{{"role":"user","content":"{last}"}}]{extra}}}"#
            )
        };
        let a = context(&body("s", "e", "What is Rust?", ""), w);
        // Another last question, however long; the model and `stream` are not in it either.
        let long = "x".repeat(200);
        assert_eq!(context(&body("s", "e", "What's Rust", ""), w), a);
        assert_eq!(context(&body("s", "e", &long, ""), w), a);
        assert_eq!(
            context(&body("s", "e", "q", r#","stream":true,"temperature":1"#), w),
            a
        );
        for other in [
            body("t", "e", "What is Rust?", ""),
            body("s", "f", "What is Rust?", ""),
            body("s", "e", "What is Rust?", r#","temperature":0.2"#),
            body(
                "s",
                "e",
                "What is Rust?",
                r#","tools":[{"type":"function","function":{"name":"f"}}]"#,
            ),
        ] {
            assert_ne!(context(&other, w), a, "{other}");
        }
        // The same text in an earlier turn is not masked: only the last turn's string is.
        assert_ne!(
            context(&body("s", "q", "q", ""), w),
            context(&body("s", "e", "q", ""), w)
        );
        // The context is never the exact body hash (the text is masked, not dropped).
        let mut d = crate::pipeline::decode::Decoder::default();
        let json = body("s", "e", "What is Rust?", "");
        let exact = d
            .parse(json.as_bytes(), |v| key::body(&v.as_object().unwrap()))
            .unwrap();
        assert_ne!(exact, a);
        // An image beside the text stays in the context.
        let img = |url: &str| {
            format!(
                r#"{{"messages":[{{"role":"user","content":[{{"type":"text","text":"q"}},{{"type":"image_url","image_url":{{"url":"{url}"}}}}]}}]}}"#
            )
        };
        assert_ne!(context(&img("a"), w), context(&img("b"), w));
    }

    #[test]
    fn each_protocol_masks_its_own_turn() {
        let pairs = [
            (
                Wire::Anthropic,
                r#"{"system":"s","messages":[{"role":"user","content":[{"type":"text","text":"ONE"}]}]}"#,
            ),
            (Wire::Responses, r#"{"instructions":"s","input":"ONE"}"#),
            (
                Wire::Responses,
                r#"{"instructions":"s","input":[{"role":"user","content":[{"type":"input_text","text":"ONE"}]}]}"#,
            ),
            (
                Wire::Gemini,
                r#"{"systemInstruction":{"parts":[{"text":"s"}]},"contents":[{"parts":[{"text":"ONE"}]}]}"#,
            ),
        ];
        for (w, json) in pairs {
            let a = split_of(json, w).unwrap();
            let b = split_of(&json.replace("ONE", "another question"), w).unwrap();
            assert_eq!((a.text.as_str(), a.context), ("ONE", b.context), "{json}");
            let c = split_of(&json.replace("\"s\"", "\"t\""), w).unwrap();
            assert_ne!(c.context, a.context, "{json}");
        }
    }
}
