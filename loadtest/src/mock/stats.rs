//! Counters shared by every mock thread: atomics for the numbers, a mutex for the last request.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

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
        }
    }

    pub fn reset(&self) {
        self.requests.store(0, Relaxed);
        self.total_connections.store(0, Relaxed);
        self.streams_aborted.store(0, Relaxed);
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
        })
        .to_string()
    }
}
