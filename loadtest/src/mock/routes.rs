//! Which endpoint a request is for: the route, the model its path names (Gemini, Vertex AI
//! and Bedrock put it there, and it is then the answer's model), whether the path makes it a
//! stream, how the caller must authenticate, and whose error body it gets. [`denied`] checks
//! that authentication before anything else is done with the request.

use super::directives::percent_decode;
use super::embed::Embed;
use super::responses::Api;
use super::sigv4::{self, AwsKeys};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Route {
    Api(Api),
    /// OpenAI `/v1/embeddings`.
    Embeddings,
    /// Every other protocol's embeddings.
    Embed(Embed),
    Models,
    /// The gateway's guardrail webhook (`guardrail.rs`).
    Guardrail,
    /// Anthropic's `count_tokens`: about four request bytes a token.
    CountTokens,
    Stats,
    Reset,
    /// Google's OAuth token endpoint (a service account's JWT for an access token).
    Token,
    /// A known path the mock does not answer (a 400 with this message).
    Unsupported(&'static str),
    NotFound,
}

/// Whose error bodies a route answers with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Family {
    OpenAi,
    Anthropic,
    Cohere,
    Google,
    Bedrock,
}

/// What a route requires of the caller.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Auth {
    None,
    /// Google AI: `x-goog-api-key` (or a bearer token).
    GoogleKey,
    /// Vertex AI: `authorization: Bearer`.
    Bearer,
    /// Bedrock: a SigV4 signature.
    SigV4,
}

/// A routed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub route: Route,
    pub family: Family,
    pub auth: Auth,
    /// The model named by the path, percent-decoded.
    pub model: Option<String>,
    /// Set when the path decides streaming (else the body's `stream` does).
    pub stream: Option<bool>,
    /// The per-API counter in the stats.
    pub stat: &'static str,
}

fn target(route: Route, family: Family, stat: &'static str) -> Target {
    Target {
        route,
        family,
        auth: Auth::None,
        model: None,
        stream: None,
        stat,
    }
}

pub(crate) fn route(method: &str, path: &str, has_prefix: bool) -> Target {
    use Family::*;
    match (method, path) {
        ("POST", "/v1/chat/completions") => target(Route::Api(Api::Chat), OpenAi, "openai_chat"),
        ("POST", "/v1/completions") => {
            target(Route::Api(Api::Completion), OpenAi, "openai_completions")
        }
        ("POST", "/v1/responses") => target(Route::Api(Api::Responses), OpenAi, "openai_responses"),
        ("POST", "/v1/embeddings") => target(Route::Embeddings, OpenAi, "openai_embeddings"),
        ("GET", "/v1/models") => target(Route::Models, OpenAi, "models"),
        ("POST", "/v1/messages") => {
            target(Route::Api(Api::Messages), Anthropic, "anthropic_messages")
        }
        ("POST", "/v1/messages/count_tokens") => {
            target(Route::CountTokens, Anthropic, "anthropic_count_tokens")
        }
        ("POST", "/v2/chat") => target(Route::Api(Api::Cohere), Cohere, "cohere_chat"),
        ("POST", "/v2/embed") => target(Route::Embed(Embed::Cohere), Cohere, "cohere_embed"),
        ("GET", "/mock/stats") if !has_prefix => target(Route::Stats, OpenAi, "control"),
        ("POST", "/mock/reset") if !has_prefix => target(Route::Reset, OpenAi, "control"),
        ("POST", "/guardrail") => target(Route::Guardrail, OpenAi, "guardrail"),
        ("POST", "/token") => target(Route::Token, OpenAi, "control"),
        ("POST", _) => google(path)
            .or_else(|| bedrock(path))
            .unwrap_or_else(not_found),
        _ => not_found(),
    }
}

fn not_found() -> Target {
    target(Route::NotFound, Family::OpenAi, "not_found")
}

/// `/v1beta/models/{m}:{op}` (Google AI) and
/// `/v1/projects/{p}/locations/{r}/publishers/{google|anthropic}/models/{m}:{op}` (Vertex AI).
fn google(path: &str) -> Option<Target> {
    let (publisher, rest, vertex) = if let Some(rest) = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))
    {
        ("google", rest, false)
    } else {
        let rest = path
            .strip_prefix("/v1/projects/")
            .or_else(|| path.strip_prefix("/v1beta1/projects/"))?;
        let s: Vec<&str> = rest.splitn(7, '/').collect();
        if s.len() != 7 || s[1] != "locations" || s[3] != "publishers" || s[5] != "models" {
            return None;
        }
        (s[4], s[6], true)
    };
    let (model, op) = rest.rsplit_once(':')?;
    use Family::*;
    let (route, family, stream, stat) = match (publisher, op) {
        ("google", "generateContent") => (Route::Api(Api::Gemini), Google, false, "gemini"),
        ("google", "streamGenerateContent") => (Route::Api(Api::Gemini), Google, true, "gemini"),
        ("google", "embedContent") if !vertex => (
            Route::Embed(Embed::GeminiOne),
            Google,
            false,
            "gemini_embed",
        ),
        ("google", "batchEmbedContents") if !vertex => (
            Route::Embed(Embed::GeminiBatch),
            Google,
            false,
            "gemini_embed",
        ),
        ("google", "predict") if vertex => (
            Route::Embed(Embed::VertexPredict),
            Google,
            false,
            "vertex_predict",
        ),
        ("anthropic", "rawPredict") if vertex => (
            Route::Api(Api::Messages),
            Anthropic,
            false,
            "vertex_anthropic",
        ),
        ("anthropic", "streamRawPredict") if vertex => (
            Route::Api(Api::Messages),
            Anthropic,
            true,
            "vertex_anthropic",
        ),
        _ => return None,
    };
    let stat = match (vertex, stat) {
        (true, "gemini") => "vertex_gemini",
        _ => stat,
    };
    Some(Target {
        route,
        family,
        auth: if vertex {
            Auth::Bearer
        } else {
            Auth::GoogleKey
        },
        model: Some(percent_decode(model)),
        stream: (route != Route::Embed(Embed::VertexPredict)).then_some(stream),
        stat,
    })
}

/// `/model/{id}/converse`, `/converse-stream` and `/invoke` (embedding models only).
fn bedrock(path: &str) -> Option<Target> {
    let (id, op) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let model = percent_decode(id);
    let (route, stream, stat) = match op {
        "converse" => (Route::Api(Api::Bedrock), Some(false), "bedrock_converse"),
        "converse-stream" => (Route::Api(Api::Bedrock), Some(true), "bedrock_converse"),
        "invoke" if model.contains("titan-embed") => {
            (Route::Embed(Embed::Titan), None, "bedrock_invoke")
        }
        "invoke" if model.contains("cohere.embed") => {
            (Route::Embed(Embed::BedrockCohere), None, "bedrock_invoke")
        }
        "invoke" | "invoke-with-response-stream" => (
            Route::Unsupported(
                "mock: invoke answers only amazon.titan-embed* and cohere.embed* models",
            ),
            None,
            "bedrock_invoke",
        ),
        _ => return None,
    };
    Some(Target {
        route,
        family: Family::Bedrock,
        auth: Auth::SigV4,
        model: Some(model),
        stream,
        stat,
    })
}

/// Why a request is refused before anything else: status, message and, for Bedrock, its
/// `x-amzn-errortype`.
pub(crate) struct Denied {
    pub status: u16,
    pub message: String,
    pub error_type: Option<&'static str>,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Checks what `t.auth` requires of the request.
pub(crate) fn denied(
    t: &Target,
    method: &str,
    raw_target: &str,
    headers: &[(String, String)],
    body: &[u8],
    aws: Option<&AwsKeys>,
) -> Option<Denied> {
    let bearer = header(headers, "authorization").is_some_and(|a| a.starts_with("Bearer "));
    let deny = |status, message: &str, error_type| {
        Some(Denied {
            status,
            message: message.to_string(),
            error_type,
        })
    };
    match t.auth {
        Auth::None => None,
        Auth::GoogleKey if header(headers, "x-goog-api-key").is_some() || bearer => None,
        Auth::GoogleKey => deny(
            403,
            "mock: Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            None,
        ),
        Auth::Bearer if bearer => None,
        Auth::Bearer => deny(
            401,
            "mock: Request is missing required authentication credential. Expected OAuth 2 access token.",
            None,
        ),
        Auth::SigV4 => {
            let req = sigv4::Request {
                method,
                target: raw_target,
                headers,
                body,
            };
            let e = sigv4::verify(aws, &req).err()?;
            deny(403, &e, Some("InvalidSignatureException"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_paths() {
        let t = route(
            "POST",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
            false,
        );
        assert_eq!(t.route, Route::Api(Api::Gemini));
        assert_eq!(
            (t.model.as_deref(), t.stream, t.auth),
            (Some("gemini-2.0-flash"), Some(true), Auth::GoogleKey)
        );
        let t = route(
            "POST",
            "/v1beta/models/text-embedding-004:batchEmbedContents",
            false,
        );
        assert_eq!(t.route, Route::Embed(Embed::GeminiBatch));
        let v = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:generateContent";
        let t = route("POST", v, false);
        assert_eq!(
            (t.route, t.auth, t.stat),
            (Route::Api(Api::Gemini), Auth::Bearer, "vertex_gemini")
        );
        let v = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-3-5-haiku@20241022:streamRawPredict";
        let t = route("POST", v, false);
        assert_eq!(
            (t.route, t.family, t.stream),
            (Route::Api(Api::Messages), Family::Anthropic, Some(true))
        );
        assert_eq!(t.model.as_deref(), Some("claude-3-5-haiku@20241022"));
        let v = "/v1/projects/p/locations/r/publishers/google/models/text-embedding-005:predict";
        assert_eq!(
            route("POST", v, false).route,
            Route::Embed(Embed::VertexPredict)
        );
        let v = "/v1/projects/p/locations/r/publishers/anthropic/models/m:generateContent";
        assert_eq!(route("POST", v, false).route, Route::NotFound);
    }

    #[test]
    fn bedrock_paths() {
        let t = route(
            "POST",
            "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
            false,
        );
        assert_eq!((t.route, t.stream), (Route::Api(Api::Bedrock), Some(true)));
        assert_eq!(
            t.model.as_deref(),
            Some("anthropic.claude-3-haiku-20240307-v1:0")
        );
        let t = route("POST", "/model/amazon.titan-embed-text-v2:0/invoke", false);
        assert_eq!(t.route, Route::Embed(Embed::Titan));
        let t = route("POST", "/model/cohere.embed-english-v3/invoke", false);
        assert_eq!(t.route, Route::Embed(Embed::BedrockCohere));
        assert!(matches!(
            route("POST", "/model/x/invoke", false).route,
            Route::Unsupported(_)
        ));
        assert_eq!(
            route("POST", "/model/x/other", false).route,
            Route::NotFound
        );
    }

    #[test]
    fn authentication() {
        let t = route("POST", "/v1beta/models/g:generateContent", false);
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let check = |t: &Target, headers: &[(String, String)]| {
            denied(t, "POST", "/", headers, b"", None).map(|d| d.status)
        };
        assert_eq!(check(&t, &[]), Some(403));
        assert_eq!(check(&t, &h("x-goog-api-key", "k")), None);
        let v = route(
            "POST",
            "/v1/projects/p/locations/r/publishers/google/models/g:generateContent",
            false,
        );
        assert_eq!(check(&v, &h("x-goog-api-key", "k")), Some(401));
        assert_eq!(check(&v, &h("authorization", "Bearer t")), None);
        let b = route("POST", "/model/m/converse", false);
        assert_eq!(check(&b, &h("authorization", "Bearer t")), Some(403));
        assert_eq!(
            check(&b, &h("authorization", "AWS4-HMAC-SHA256 Credential=x")),
            None
        );
        assert_eq!(check(&route("POST", "/v1/responses", false), &[]), None);
    }
}
