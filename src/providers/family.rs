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

/// A provider field only some vendors take, and what it means for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// `anthropic_version`: the `anthropic-version` header (a default is always sent).
    AnthropicVersion,
    /// `anthropic_beta`: the `anthropic-beta` header.
    AnthropicBeta,
    /// `default_max_tokens`: sent when a protocol requires `max_tokens` and the client gave none.
    DefaultMaxTokens,
    /// `organization`: OpenAI's `openai-organization` header.
    Organization,
    /// `project`: OpenAI's `openai-project` header.
    OpenAiProject,
    /// `api_version`: Azure's `api-version` query value.
    ApiVersion,
    /// `project`: the Google Cloud project (required).
    CloudProject,
    /// `region`: the cloud region (`{region}` in the default base URL).
    Region,
    /// `credentials: { file: sa.json }` or `access_token: { env: … }` (Google; one required).
    GoogleAuth,
    /// `access_key_id`, `secret_access_key`, `session_token`, `profile` (AWS; else the
    /// environment and the shared files).
    AwsAuth,
}

impl Setting {
    /// The provider fields it covers.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Setting::AnthropicVersion => &["anthropic_version"],
            Setting::AnthropicBeta => &["anthropic_beta"],
            Setting::DefaultMaxTokens => &["default_max_tokens"],
            Setting::Organization => &["organization"],
            Setting::OpenAiProject | Setting::CloudProject => &["project"],
            Setting::ApiVersion => &["api_version"],
            Setting::Region => &["region"],
            Setting::GoogleAuth => &["credentials", "access_token"],
            Setting::AwsAuth => &[
                "access_key_id",
                "secret_access_key",
                "session_token",
                "profile",
            ],
        }
    }
}

const OPENAI: &[Setting] = &[Setting::Organization, Setting::OpenAiProject];
const ANTHROPIC: &[Setting] = &[
    Setting::AnthropicVersion,
    Setting::AnthropicBeta,
    Setting::DefaultMaxTokens,
];

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
    /// The vendor-specific provider fields it takes.
    pub settings: &'static [Setting],
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
        settings: &[],
    }
}

/// Every field any vendor rejects: the decoder notes where these are in a request body.
pub const REJECTABLE: &[&str] = &["logprobs", "logit_bias", "top_logprobs"];

/// The table. `rejects` entries must appear in [`REJECTABLE`].
pub static VENDORS: &[Vendor] = &[
    Vendor {
        settings: OPENAI,
        ..openai_like("openai", Some("https://api.openai.com/v1"), false, &[])
    },
    Vendor {
        name: "openai-responses",
        protocol: Protocol::Responses,
        settings: OPENAI,
        ..openai_like(
            "openai-responses",
            Some("https://api.openai.com/v1"),
            false,
            &[],
        )
    },
    Vendor {
        name: "azure",
        protocol: Protocol::OpenAi,
        base_url: None,
        auth: Auth::Header("api-key"),
        needs_key: true,
        path: PathStyle::AzureDeployment,
        rejects: &[],
        settings: &[Setting::ApiVersion],
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
        settings: ANTHROPIC,
    },
    Vendor {
        name: "cohere",
        protocol: Protocol::Cohere,
        base_url: Some("https://api.cohere.com"),
        auth: Auth::Bearer,
        needs_key: true,
        path: PathStyle::Plain,
        rejects: &[],
        settings: &[],
    },
    Vendor {
        name: "gemini",
        protocol: Protocol::Gemini,
        base_url: Some("https://generativelanguage.googleapis.com"),
        auth: Auth::Header("x-goog-api-key"),
        needs_key: true,
        path: PathStyle::Plain,
        rejects: &[],
        settings: &[],
    },
    Vendor {
        name: "vertex",
        protocol: Protocol::Vertex,
        // `global` drops the region prefix.
        base_url: Some("https://{region}-aiplatform.googleapis.com"),
        auth: Auth::Bearer,
        needs_key: false,
        path: PathStyle::Plain,
        rejects: &[],
        settings: &[
            Setting::CloudProject,
            Setting::Region,
            Setting::GoogleAuth,
            Setting::DefaultMaxTokens,
        ],
    },
    Vendor {
        name: "bedrock",
        protocol: Protocol::Bedrock,
        base_url: Some("https://bedrock-runtime.{region}.amazonaws.com"),
        // A Bedrock API key (`api_key`) is a bearer token; without one requests are signed.
        auth: Auth::Bearer,
        needs_key: false,
        path: PathStyle::Plain,
        rejects: &[],
        settings: &[Setting::Region, Setting::AwsAuth, Setting::DefaultMaxTokens],
    },
    Vendor {
        name: "mock",
        protocol: Protocol::Mock,
        base_url: None,
        auth: Auth::Bearer,
        needs_key: false,
        path: PathStyle::Plain,
        rejects: &[],
        settings: &[],
    },
];

pub fn find(name: &str) -> Option<&'static Vendor> {
    VENDORS.iter().find(|v| v.name == name)
}

/// Every vendor-specific provider field, once each.
pub fn settings() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for f in VENDORS
        .iter()
        .flat_map(|v| v.settings.iter().flat_map(|s| s.fields()))
    {
        if !out.contains(f) {
            out.push(f);
        }
    }
    out
}

/// The vendors that take provider field `field`, for error messages.
pub fn taking(field: &str) -> String {
    VENDORS
        .iter()
        .filter(|v| v.settings.iter().any(|s| s.fields().contains(&field)))
        .map(|v| v.name)
        .collect::<Vec<_>>()
        .join(", ")
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
