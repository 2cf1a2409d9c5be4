//! Provider adapters: one module per wire protocol, each without I/O. An adapter builds the
//! upstream request, reads usage out of a response or a stream event, and maps upstream
//! failures to error kinds. Adding a protocol is one module and one line in [`Protocol`].

pub mod mock;
pub mod openai;

/// The wire protocols a provider can speak. The registry: add a protocol here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    /// Built in: answers locally, no network.
    Mock,
}

impl Protocol {
    pub fn from_name(s: &str) -> Option<Protocol> {
        match s {
            "openai" => Some(Protocol::OpenAi),
            "mock" => Some(Protocol::Mock),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Mock => "mock",
        }
    }

    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Protocol::OpenAi => Some("https://api.openai.com/v1"),
            Protocol::Mock => None,
        }
    }
}

/// The OpenAI-ingress endpoints that proxy to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
        }
    }

    pub fn streams(self) -> bool {
        !matches!(self, Endpoint::Embeddings)
    }
}

/// Tokens a request consumed, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
}
