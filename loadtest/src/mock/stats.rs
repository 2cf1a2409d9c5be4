//! Counters shared by every mock thread: atomics for the numbers (overall and per API), a
//! mutex for the last request; and the AWS keys Bedrock signatures are checked with.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::sigv4::AwsKeys;

/// A snapshot of the mock's counters.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// API requests served (the `/mock/stats` and `/mock/reset` control endpoints are not counted).
    pub requests: u64,
    /// Connections currently open (a gauge: `reset_stats` leaves it alone).
    pub open_connections: u64,
    /// Connections accepted since start (or the last reset).
    pub total_connections: u64,
    /// SSE responses the client closed before the mock finished sending them.
    pub streams_aborted: u64,
    /// The last API request received (control endpoints excluded).
    pub last_request: Option<RecordedRequest>,
    /// Requests per API, by the names in [`APIS`] (streamed and whole answers alike).
    pub by_api: BTreeMap<&'static str, u64>,
    /// Responses API requests that carried a `previous_response_id`.
    pub previous_response_ids: u64,
}

/// The per-API counters: one per endpoint family (Vertex AI apart from Google AI).
pub const APIS: &[&str] = &[
    "openai_chat",
    "openai_completions",
    "openai_responses",
    "openai_embeddings",
    "models",
    "anthropic_messages",
    "anthropic_count_tokens",
    "cohere_chat",
    "cohere_embed",
    "gemini",
    "gemini_embed",
    "vertex_gemini",
    "vertex_predict",
    "vertex_anthropic",
    "bedrock_converse",
    "bedrock_invoke",
    "guardrail",
    "not_found",
];

const N_APIS: usize = APIS.len();

impl Stats {
    /// The count of API `name` (0 for a name not in [`APIS`]).
    pub fn api(&self, name: &str) -> u64 {
        self.by_api.get(name).copied().unwrap_or(0)
    }
}

/// One request as the mock received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The raw request target, including any `/mock/...` prefix and the query string.
    pub path: String,
    /// Header names are lowercased; order and duplicates are kept.
    pub headers: Vec<(String, String)>,
    /// The body after de-chunking.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first value of header `name` (give it lowercased).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// State shared between the `MockServer` handle and its threads.
#[derive(Default)]
pub(crate) struct Shared {
    pub requests: AtomicU64,
    pub open_connections: AtomicU64,
    pub total_connections: AtomicU64,
    pub streams_aborted: AtomicU64,
    pub next_id: AtomicU64,
    pub last_request: Mutex<Option<RecordedRequest>>,
    pub stop: AtomicBool,
    pub by_api: [AtomicU64; N_APIS],
    pub previous_response_ids: AtomicU64,
    /// The keys Bedrock requests' signatures are checked with (none: not checked).
    pub aws: Option<AwsKeys>,
}

impl Shared {
    pub fn snapshot(&self) -> Stats {
        let last_request = self
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Stats {
            requests: self.requests.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed),
            total_connections: self.total_connections.load(Relaxed),
            streams_aborted: self.streams_aborted.load(Relaxed),
            last_request,
            by_api: APIS
                .iter()
                .zip(&self.by_api)
                .map(|(&name, n)| (name, n.load(Relaxed)))
                .collect(),
            previous_response_ids: self.previous_response_ids.load(Relaxed),
        }
    }

    pub fn reset(&self) {
        self.requests.store(0, Relaxed);
        self.total_connections.store(0, Relaxed);
        self.streams_aborted.store(0, Relaxed);
        for n in &self.by_api {
            n.store(0, Relaxed);
        }
        self.previous_response_ids.store(0, Relaxed);
        let old = self
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        drop(old);
    }

    /// Counts one request and makes it the last one.
    pub fn record(&self, req: RecordedRequest) {
        self.requests.fetch_add(1, Relaxed);
        let old = self
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(req);
        drop(old); // freed outside the lock
    }

    /// Counts one request to API `name` (one of [`APIS`]; others are not counted).
    pub fn count_api(&self, name: &str) {
        if let Some(i) = APIS.iter().position(|&a| a == name) {
            self.by_api[i].fetch_add(1, Relaxed);
        }
    }

    pub fn previous_response(&self) {
        self.previous_response_ids.fetch_add(1, Relaxed);
    }

    pub fn stream_aborted(&self) {
        self.streams_aborted.fetch_add(1, Relaxed);
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    pub fn conn_opened(&self) {
        self.open_connections.fetch_add(1, Relaxed);
        self.total_connections.fetch_add(1, Relaxed);
    }

    pub fn conn_closed(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }
}

impl Stats {
    /// The snapshot as JSON (the last request's body as a lossy UTF-8 string).
    pub fn to_json(&self) -> String {
        let last = match &self.last_request {
            None => serde_json::Value::Null,
            Some(r) => serde_json::json!({
                "method": r.method,
                "path": r.path,
                "headers": r.headers.iter().map(|(k, v)| [k, v]).collect::<Vec<_>>(),
                "body": String::from_utf8_lossy(&r.body),
            }),
        };
        serde_json::json!({
            "requests": self.requests,
            "open_connections": self.open_connections,
            "total_connections": self.total_connections,
            "streams_aborted": self.streams_aborted,
            "last_request": last,
            "by_api": self.by_api,
            "previous_response_ids": self.previous_response_ids,
        })
        .to_string()
    }
}
