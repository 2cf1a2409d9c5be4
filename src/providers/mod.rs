//! Provider adapters: one module per wire protocol, each without I/O. An adapter builds the
//! upstream request, reads usage out of a response or a stream event, and maps upstream
//! failures to error kinds. Adding a protocol is one folder and one line in [`Protocol`];
//! adding an OpenAI-compatible vendor is one row in [`family`].

pub mod adapter;
pub mod anthropic;
pub mod bedrock;
pub mod canonical;
pub mod cohere;
pub(crate) mod encode;
pub mod family;
pub mod gemini;
pub mod head;
pub mod mock;
pub mod openai;
pub mod responses;
pub mod translate;
pub mod vertex;

/// The wire protocols a provider can speak (vendors are rows of [`family::VENDORS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OpenAi,
    Anthropic,
    /// Cohere v2 chat (an upstream only).
    Cohere,
    /// Google's Gemini API.
    Gemini,
    /// Google Cloud's Vertex AI (Gemini and Claude models).
    Vertex,
    /// OpenAI's Responses API.
    Responses,
    /// Amazon Bedrock's Converse API.
    Bedrock,
    /// Built in: answers locally, no network.
    Mock,
}

impl Protocol {
    /// Everything the gateway knows of the protocol: the one match on it.
    pub fn adapter(self) -> &'static dyn adapter::Adapter {
        match self {
            Protocol::OpenAi => &openai::OpenAi,
            Protocol::Anthropic => &anthropic::Anthropic,
            Protocol::Cohere => &cohere::Cohere,
            Protocol::Gemini => &gemini::Gemini,
            Protocol::Vertex => &vertex::Vertex,
            Protocol::Responses => &responses::Responses,
            Protocol::Bedrock => &bedrock::Bedrock,
            Protocol::Mock => &mock::Mock,
        }
    }

    /// The adapter for one of its models (the protocol's own, unless its models differ).
    pub fn adapter_for(self, model: &str) -> &'static dyn adapter::Adapter {
        let a = self.adapter();
        a.for_model(model).unwrap_or(a)
    }

    pub fn name(self) -> &'static str {
        self.adapter().name()
    }

    /// The ingress wire this protocol is, if clients speak it (the mock answers in OpenAI's
    /// shapes).
    pub fn wire(self) -> Option<translate::Wire> {
        self.adapter().wire()
    }
}

/// The endpoints that proxy to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI `POST /v1/responses`.
    Responses,
    /// Gemini `POST /v1beta/models/{model}:generateContent` (and its streaming form).
    Generate,
}

impl Endpoint {
    /// The path under the provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Messages => "/v1/messages",
            Endpoint::CountTokens => "/v1/messages/count_tokens",
            Endpoint::Responses => "/responses",
            // The model and the method follow (`/{model}:generateContent`).
            Endpoint::Generate => "/v1beta/models",
        }
    }

    pub fn streams(self) -> bool {
        !matches!(self, Endpoint::Embeddings | Endpoint::CountTokens)
    }

    /// A chat turn (the only kind that translates across protocols).
    pub fn is_chat(self) -> bool {
        matches!(
            self,
            Endpoint::Chat | Endpoint::Messages | Endpoint::Responses | Endpoint::Generate
        )
    }
}

/// Tokens a request consumed, as the provider reported them. `input` counts every prompt
/// token, cached ones included (on both protocols: Anthropic's `input_tokens` leaves the cached
/// share out, so its parsers add it back); `cache_read`/`cache_write` are the cached share of it.
/// `reasoning` is the share of `output` the model spent reasoning, not tokens on top of it; it is
/// 0 where the provider does not report it (Anthropic counts thinking in `output_tokens` only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}
