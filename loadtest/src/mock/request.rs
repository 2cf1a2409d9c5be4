//! The few JSON body fields the mock needs (`model`, `stream`, `stream_options.include_usage`,
//! `input`, `dimensions`, `mock`, the names in `tools`, `thinking`, `reasoning_effort`); every
//! other field is skipped without being built.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};

/// The parsed request body.
#[derive(Deserialize, Default, Debug)]
pub(crate) struct Body {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub input: Option<InputCount>,
    #[serde(default)]
    pub dimensions: Option<u64>,
    #[serde(default)]
    pub mock: Option<serde_json::Map<String, serde_json::Value>>,
    /// Declared tools: OpenAI `{"type":"function","function":{"name":..}}`, Anthropic `{"name":..}`.
    #[serde(default)]
    pub tools: Option<Vec<ToolDecl>>,
    /// Anthropic extended thinking, e.g. `{"type":"enabled","budget_tokens":1024}`; kept loose
    /// so an unexpected shape is "not enabled" rather than a 400.
    #[serde(default)]
    pub thinking: Option<serde_json::Value>,
    /// OpenAI reasoning models' `"low" | "medium" | "high"` (or `"none"`).
    #[serde(default)]
    pub reasoning_effort: Option<serde_json::Value>,
    /// Responses API `{"effort":..}`.
    #[serde(default)]
    pub reasoning: Option<serde_json::Value>,
    /// Responses API: the answer continues a stored one.
    #[serde(default)]
    pub previous_response_id: Option<serde_json::Value>,
    /// Gemini `generationConfig` (`thinkingConfig.includeThoughts`).
    #[serde(default, rename = "generationConfig")]
    pub generation_config: Option<serde_json::Value>,
    /// Bedrock Converse `toolConfig.tools[].toolSpec.name`.
    #[serde(default, rename = "toolConfig")]
    pub tool_config: Option<serde_json::Value>,
    /// Bedrock Converse `additionalModelRequestFields` (`thinking` or `reasoning_config`).
    #[serde(default, rename = "additionalModelRequestFields")]
    pub additional_fields: Option<serde_json::Value>,
    /// Cohere embed (v2, and on Bedrock): the texts to embed, echoed back.
    #[serde(default)]
    pub texts: Option<Vec<String>>,
    /// Cohere v2 embed: `["float", "int8", ...]`.
    #[serde(default)]
    pub embedding_types: Option<Vec<String>>,
    /// Titan embeddings on Bedrock.
    #[serde(default, rename = "inputText")]
    pub input_text: Option<String>,
    /// Gemini `batchEmbedContents`: one embedding each.
    #[serde(default)]
    pub requests: Option<Vec<IgnoredAny>>,
    /// Vertex `predict`: one embedding each.
    #[serde(default)]
    pub instances: Option<Vec<IgnoredAny>>,
    /// Gemini `embedContent`'s dimensions.
    #[serde(default, rename = "outputDimensionality")]
    pub output_dimensionality: Option<u64>,
}

/// One entry of `tools`; only its name is kept (Gemini's entries declare several).
#[derive(Deserialize, Default, Debug)]
pub(crate) struct ToolDecl {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDecl>,
    #[serde(default, rename = "functionDeclarations")]
    pub function_declarations: Option<Vec<FunctionDecl>>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct FunctionDecl {
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, Default, Debug)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

impl Body {
    /// Parses a body; an empty body is an empty object.
    pub fn parse(bytes: &[u8]) -> Result<Body, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body::default());
        }
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))
    }

    pub fn stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }

    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    /// The declared tool names in order (`function.name`, else `name`, Gemini's
    /// `functionDeclarations[].name`, Bedrock's `toolConfig.tools[].toolSpec.name`); nameless
    /// tools skipped.
    pub fn tool_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for t in self.tools.iter().flatten() {
            if let Some(decls) = &t.function_declarations {
                names.extend(decls.iter().filter_map(|d| d.name.clone()));
            } else if let Some(n) = t.function.as_ref().and_then(|f| f.name.clone()) {
                names.push(n);
            } else if let Some(n) = &t.name {
                names.push(n.clone());
            }
        }
        let specs = self.tool_config.as_ref().and_then(|c| c.get("tools"));
        for spec in specs.and_then(|t| t.as_array()).into_iter().flatten() {
            let name = spec.pointer("/toolSpec/name").and_then(|n| n.as_str());
            names.extend(name.map(str::to_string));
        }
        names
    }

    /// Gemini `generationConfig.thinkingConfig.includeThoughts`.
    pub fn gemini_thoughts(&self) -> bool {
        let c = self.generation_config.as_ref();
        let v = c.and_then(|c| c.pointer("/thinkingConfig/includeThoughts"));
        v.and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Bedrock: Anthropic `thinking` enabled, or any `reasoning_config`, among the
    /// additional model request fields.
    pub fn bedrock_reasoning(&self) -> bool {
        let f = self.additional_fields.as_ref();
        let kind = f
            .and_then(|f| f.pointer("/thinking/type"))
            .and_then(|k| k.as_str());
        matches!(kind, Some("enabled" | "adaptive"))
            || f.and_then(|f| f.get("reasoning_config")).is_some()
    }

    /// Responses API `reasoning.effort` set to anything but `"none"`.
    pub fn responses_reasoning(&self) -> bool {
        let effort = self.reasoning.as_ref().and_then(|r| r.get("effort"));
        effort.and_then(|e| e.as_str()).is_some_and(|e| e != "none")
    }

    /// Anthropic `thinking` with type `enabled` (or `adaptive`).
    pub fn thinking_enabled(&self) -> bool {
        let kind = self.thinking.as_ref().and_then(|t| t.get("type"));
        matches!(kind.and_then(|k| k.as_str()), Some("enabled" | "adaptive"))
    }

    /// OpenAI `reasoning_effort` set to anything but `"none"`.
    pub fn reasoning_requested(&self) -> bool {
        self.reasoning_effort
            .as_ref()
            .and_then(|e| e.as_str())
            .is_some_and(|e| e != "none")
    }

    /// The `mock` object's entries as (name, value) strings; nulls are skipped.
    pub fn mock_directives(&self) -> impl Iterator<Item = (&str, String)> {
        self.mock.iter().flatten().filter_map(|(k, v)| {
            let v = match v {
                serde_json::Value::Null => return None,
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((k.as_str(), v))
        })
    }
}

/// How many embeddings an `input` asks for: a string or a token array is one, an array of
/// strings or of token arrays is one per element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InputCount(pub u64);

impl<'de> Deserialize<'de> for InputCount {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(InputVisitor)
    }
}

struct InputVisitor;

impl<'de> Visitor<'de> for InputVisitor {
    type Value = InputCount;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<InputCount, E> {
        Ok(InputCount(1))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<InputCount, E> {
        Ok(InputCount(1))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<InputCount, E> {
        Ok(InputCount(1))
    }

    fn visit_unit<E: de::Error>(self) -> Result<InputCount, E> {
        Ok(InputCount(0))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputCount, A::Error> {
        let mut n = 0;
        let mut tokens = false;
        while let Some(e) = seq.next_element::<Element>()? {
            n += 1;
            tokens |= e.0;
        }
        // A flat array of numbers is a single tokenized input.
        Ok(InputCount(if tokens && n > 0 { 1 } else { n }))
    }
}

/// One element of an `input` array; `.0` is true when it is a number (a token id).
struct Element(bool);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, a number, an array or an input item")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Element, E> {
        Ok(Element(false))
    }

    /// A Responses API input item (`{"type":"message",…}`): one element, not a token.
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Element(false))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Element, E> {
        Ok(Element(true))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Element, E> {
        Ok(Element(true))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Element, E> {
        Ok(Element(true))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Element(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(json: &str) -> u64 {
        Body::parse(json.as_bytes()).unwrap().input.unwrap().0
    }

    #[test]
    fn inputs() {
        assert_eq!(count(r#"{"input":"a"}"#), 1);
        assert_eq!(count(r#"{"input":["a","b","c"]}"#), 3);
        assert_eq!(count(r#"{"input":[1,2,3]}"#), 1);
        assert_eq!(count(r#"{"input":[[1,2],[3]]}"#), 2);
    }

    #[test]
    fn fields() {
        let b = Body::parse(
            br#"{"model":"m\"x","messages":[{"role":"user","content":"hi"}],"stream":true,
                "stream_options":{"include_usage":true},"mock":{"chunks":3,"hang":false,"x":null}}"#,
        )
        .unwrap();
        assert_eq!(b.model.as_deref(), Some("m\"x"));
        assert!(b.stream() && b.include_usage());
        let d: Vec<_> = b.mock_directives().collect();
        assert_eq!(d, vec![("chunks", "3".into()), ("hang", "false".into())]);
        assert!(Body::parse(b"").unwrap().model.is_none());
        assert!(Body::parse(b"{nope").is_err());
    }

    #[test]
    fn tools_and_reasoning() {
        let b = Body::parse(
            br#"{"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object"}}},
                {"type":"web_search"},{"name":"b","input_schema":{}}],
                "thinking":{"type":"enabled","budget_tokens":1024},"reasoning_effort":"none"}"#,
        )
        .unwrap();
        assert_eq!(b.tool_names(), ["a", "b"]);
        assert!(b.thinking_enabled());
        assert!(!b.reasoning_requested());
        let b =
            Body::parse(br#"{"thinking":{"type":"disabled"},"reasoning_effort":"low"}"#).unwrap();
        assert!(!b.thinking_enabled());
        assert!(b.reasoning_requested());
        let b = Body::parse(br#"{"thinking":true,"tools":null}"#).unwrap();
        assert!(!b.thinking_enabled());
        assert!(b.tool_names().is_empty());
    }
}
