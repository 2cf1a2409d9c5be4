//! The provider family table: every vendor a config can name in `protocol:`, as a row — which
//! wire protocol it speaks, its default base URL, how it takes the API key, and the request
//! fields it is known to reject (dropped before sending, with a debug log). OpenAI-compatible
//! vendors are rows here, not modules; adding one is one line.

use super::Protocol;

/// How a vendor wants the API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `authorization: Bearer <key>`
    Bearer,
    /// `<name>: <key>` (Azure's `api-key`, Anthropic's `x-api-key`).
    Header(&'static str),
}

/// URL style for the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// `{base}/chat/completions`, `{base}/v1/messages`, …
    Plain,
    /// Azure OpenAI: `{base}/openai/deployments/{target model}/chat/completions?api-version=…`.
    AzureDeployment,
}

#[derive(Debug)]
pub struct Vendor {
    /// The name used in `protocol:`.
    pub name: &'static str,
    pub protocol: Protocol,
    pub base_url: Option<&'static str>,
    pub auth: Auth,
    /// Whether a config must give `api_key` (local servers need none).
    pub needs_key: bool,
    pub path: PathStyle,
    /// Top-level request fields the vendor answers with an error; removed before sending.
    pub rejects: &'static [&'static str],
}

const fn openai_like(
    name: &'static str,
    base_url: Option<&'static str>,
    needs_key: bool,
    rejects: &'static [&'static str],
) -> Vendor {
    Vendor {
        name,
        protocol: Protocol::OpenAi,
        base_url,
        auth: Auth::Bearer,
        needs_key,
        path: PathStyle::Plain,
        rejects,
    }
}

/// Every field any vendor rejects: the decoder notes where these are in a request body.
pub const REJECTABLE: &[&str] = &["logprobs", "logit_bias", "top_logprobs"];

/// The table. `rejects` entries must appear in [`REJECTABLE`].
pub static VENDORS: &[Vendor] = &[
    openai_like("openai", Some("https://api.openai.com/v1"), false, &[]),
    Vendor {
        name: "azure",
        protocol: Protocol::OpenAi,
        base_url: None,
        auth: Auth::Header("api-key"),
        needs_key: true,
        path: PathStyle::AzureDeployment,
        rejects: &[],
    },
    openai_like("mistral", Some("https://api.mistral.ai/v1"), true, &[]),
    // Groq documents these as 400 errors.
    openai_like(
        "groq",
        Some("https://api.groq.com/openai/v1"),
        true,
        &["logprobs", "logit_bias", "top_logprobs"],
    ),
    openai_like("together", Some("https://api.together.xyz/v1"), true, &[]),
    openai_like(
        "fireworks",
        Some("https://api.fireworks.ai/inference/v1"),
        true,
        &[],
    ),
    openai_like("deepseek", Some("https://api.deepseek.com/v1"), true, &[]),
    openai_like("xai", Some("https://api.x.ai/v1"), true, &[]),
    openai_like(
        "openrouter",
        Some("https://openrouter.ai/api/v1"),
        true,
        &[],
    ),
    openai_like(
        "perplexity",
        Some("https://api.perplexity.ai"),
        true,
        &["logit_bias", "logprobs", "top_logprobs"],
    ),
    openai_like("vllm", Some("http://127.0.0.1:8000/v1"), false, &[]),
    openai_like("ollama", Some("http://127.0.0.1:11434/v1"), false, &[]),
    openai_like("lmstudio", Some("http://127.0.0.1:1234/v1"), false, &[]),
    openai_like("llamacpp", Some("http://127.0.0.1:8080/v1"), false, &[]),
    Vendor {
        name: "anthropic",
        protocol: Protocol::Anthropic,
        base_url: Some("https://api.anthropic.com"),
        auth: Auth::Header("x-api-key"),
        needs_key: true,
        path: PathStyle::Plain,
        rejects: &[],
    },
    Vendor {
        name: "cohere",
        protocol: Protocol::Cohere,
        base_url: Some("https://api.cohere.com"),
        auth: Auth::Bearer,
        needs_key: true,
        path: PathStyle::Plain,
        rejects: &[],
    },
    Vendor {
        name: "mock",
        protocol: Protocol::Mock,
        base_url: None,
        auth: Auth::Bearer,
        needs_key: false,
        path: PathStyle::Plain,
        rejects: &[],
    },
];

pub fn find(name: &str) -> Option<&'static Vendor> {
    VENDORS.iter().find(|v| v.name == name)
}

/// `openai, azure, …` for error messages.
pub fn names() -> String {
    VENDORS
        .iter()
        .map(|v| v.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_rejects_are_known() {
        for (i, v) in VENDORS.iter().enumerate() {
            assert!(VENDORS[..i].iter().all(|w| w.name != v.name), "{}", v.name);
            for f in v.rejects {
                assert!(REJECTABLE.contains(f), "{}: {f}", v.name);
            }
        }
        assert_eq!(find("groq").unwrap().protocol, Protocol::OpenAi);
        assert_eq!(find("anthropic").unwrap().auth, Auth::Header("x-api-key"));
        assert!(find("opnai").is_none());
    }
}
