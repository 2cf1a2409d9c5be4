//! A fast mock LLM upstream speaking the OpenAI (Chat Completions and Responses), Anthropic,
//! Cohere, Gemini (Google AI and Vertex AI) and Amazon Bedrock HTTP APIs (JSON, SSE and AWS
//! event streams), which tests program per request with directives (latency, status, chunk
//! count, drops, hangs...).
//!
//! It runs one monoio runtime per thread, each with its own listener on the same port
//! (SO_REUSEPORT when there is more than one thread). Endpoints: `POST /v1/chat/completions`,
//! `/v1/completions`, `/v1/responses`, `/v1/embeddings`, `/v1/messages`, `/v2/chat`,
//! `/v2/embed`, `/v1beta/models/{m}:{generateContent|streamGenerateContent|embedContent|
//! batchEmbedContents}`, Vertex AI's `/v1/projects/{p}/locations/{r}/publishers/google/models/
//! {m}:{generateContent|streamGenerateContent|predict}` and `.../publishers/anthropic/models/
//! {m}:{rawPredict|streamRawPredict}`, Bedrock's `/model/{id}/{converse|converse-stream|
//! invoke}`; `GET /v1/models`, `GET /mock/stats`, `POST /mock/reset` (routes: `routes.rs`);
//! the gateway's guardrail webhook, `POST /guardrail` (`guardrail.rs`: `BLOCKME`, `REDACTME`,
//! `SLOWME` and `FAILME` in a text decide its answer).
//! Directives: see [`DIRECTIVES`], [`DIRECTIVE_HELP`] and `directives.rs`.
//!
//! Embeddings are deterministic per input index, except for a model whose name contains
//! `words` (`text-embedding-words`): then each vector is the bag of its input's words
//! (lower-cased alphanumeric runs, FNV-1a-hashed to one of `dims` dimensions, counted,
//! L2-normalised), so equal texts, or texts differing in case and punctuation only, have cosine
//! 1.0 and one word in six changed about 0.83 (ask for 256 `dimensions` or so: at the default
//! 8, words collide). Every embedding shape does this (`words.rs`).
//!
//! What the assistant says is also programmable, in every protocol, whole and streamed alike:
//! - `tools=N` (0..=8): N tool calls instead of text, named after the request's `tools` in order
//!   (cycling; `get_weather` when there are none), with arguments `{"city":"Paris","call":i}` and
//!   ids `call_mock<i>` / `toolu_mock<i>`; finish `tool_calls` / `tool_use`. Streams send each
//!   call's arguments in `chunks` fragments (at least 2).
//! - `thinking`: reasoning first — an Anthropic `thinking` block signed `sig-mock-<request id>`,
//!   or OpenAI `reasoning_content`. On by default when an Anthropic body enables `thinking` or an
//!   OpenAI body sets `reasoning_effort` (other than `none`); `thinking=0` turns it off.
//! - `stop_reason=max_tokens|stop_sequence|end_turn`: forces the finish (OpenAI `length` /
//!   `stop`); `stop_sequence` answers carry `"stop_sequence":"###"` on Anthropic.
//!
//! The other protocols map them thus. Gemini: `functionCall` parts (whole, one stream chunk
//! each), thinking as a `thought: true` part (implied by `thinkingConfig.includeThoughts`),
//! `finishReason` `STOP` or `MAX_TOKENS`. Bedrock: `toolUse` blocks (ids `tooluse_mock<i>`,
//! input streamed in fragments), `reasoningContent` (implied by Anthropic `thinking` in
//! `additionalModelRequestFields`), Anthropic's stop reasons. Responses API: `function_call`
//! items, a `reasoning` item with a summary (implied by `reasoning.effort`), `max_tokens` as
//! status `incomplete`. Cohere: tool calls, no reasoning. `cached_tokens` and
//! `reasoning_tokens` land in each protocol's own usage fields; `status` gives each protocol's
//! error body (Bedrock's with `x-amzn-errortype`), `error_after` its in-stream error; the
//! SSE-only hostile shapes (`sse_no_blank`, `giant_event`, `cr_only`) leave Bedrock's binary
//! frames alone.
//!
//! Output tokens are one per content delta: reasoning pieces plus text pieces or argument
//! fragments. Module map: `routes` names the endpoint and checks authentication, `handler`
//! sends JSON answers, `stream` sends streamed ones, `wire` frames and paces the bytes of both,
//! `reply` decides the answer and the order of its events, `responses` and `tools` build the
//! OpenAI and Anthropic bytes, `cohere`, `gemini`, `bedrock` (with `eventstream` and `sigv4`)
//! and `responses_api` those of their protocols, `embed` the other embedding shapes.
//!
//! Hostile directives, for a gateway's hardening tests: `sse_no_blank`, `giant_event`,
//! `cr_only` and `stall_after` break a stream; `huge_body` and `tool_args` make an answer large;
//! `chunk_ext`, `chunk_size_garbage`, `head_trickle_ms` and `big_head` abuse HTTP/1.1 framing;
//! `usage_huge` reports token counts that overflow a sum. Every size is capped at 256 MiB
//! (`tool_args` at 32 MiB a call).

mod bedrock;
mod cohere;
mod conn;
mod directives;
mod embed;
mod errors;
pub mod eventstream;
mod gemini;
mod guardrail;
mod handler;
mod reply;
mod request;
mod responses;
mod responses_api;
mod routes;
pub mod sigv4;
mod stats;
mod stream;
mod token;
mod tools;
mod wire;
mod words;

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

pub use directives::{HELP as DIRECTIVE_HELP, NAMES as DIRECTIVES};
pub use responses::MODELS;
pub use sigv4::AwsKeys;
pub use stats::{APIS, RecordedRequest, Stats};

use stats::Shared;

/// Where and how the mock listens.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Number of server threads (each with its own runtime and listener); 0 counts as 1.
    pub threads: usize,
    /// CPUs to pin the threads to (thread `i` goes to `cpus[i % len]`); `None` = no pinning.
    pub cpus: Option<Vec<usize>>,
    /// Keys to verify Bedrock requests' SigV4 signatures with; `None` checks only that an
    /// `AWS4-HMAC-SHA256` Authorization header is there.
    pub aws: Option<AwsKeys>,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            threads: 1,
            cpus: None,
            aws: None,
        }
    }
}

/// A running mock upstream. Dropping it stops its threads (without waiting for them).
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Duplicates of the listening sockets, shut down on drop to wake the accept loops.
    listeners: Vec<OwnedFd>,
}

impl MockServer {
    /// Binds, starts the threads and returns once every thread is accepting.
    pub fn start(cfg: MockConfig) -> io::Result<MockServer> {
        let threads = cfg.threads.max(1);
        let listeners = bind_all(cfg.listen, threads)?;
        let addr = listeners[0].local_addr()?;
        let mut server = MockServer {
            addr,
            shared: Arc::new(Shared {
                aws: cfg.aws.clone(),
                ..Shared::default()
            }),
            listeners: Vec::with_capacity(threads),
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let cpus = cfg.cpus.filter(|c| !c.is_empty());
        for (i, listener) in listeners.into_iter().enumerate() {
            server
                .listeners
                .push(listener.as_fd().try_clone_to_owned()?);
            let shared = server.shared.clone();
            let ready = ready_tx.clone();
            let cpu = cpus.as_ref().map(|c| c[i % c.len()]);
            std::thread::Builder::new()
                .name(format!("mock-upstream-{i}"))
                .spawn(move || shard(listener, shared, ready, cpu))?;
        }
        drop(ready_tx);
        for _ in 0..threads {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(io::Error::other("mock thread exited during start")),
            }
        }
        Ok(server)
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT` (an unspecified listen address is given as loopback).
    pub fn base_url(&self) -> String {
        let mut a = self.addr;
        match a.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => a.set_ip(Ipv4Addr::LOCALHOST.into()),
            IpAddr::V6(ip) if ip.is_unspecified() => a.set_ip(Ipv6Addr::LOCALHOST.into()),
            _ => {}
        }
        format!("http://{a}")
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// Zeroes the counters (except `open_connections`, a gauge) and forgets the last request.
    pub fn reset_stats(&self) {
        self.shared.reset();
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for fd in &self.listeners {
            // Wakes a pending accept (it fails with EINVAL) on both drivers.
            unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
        }
    }
}

fn bind_one(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

/// One listener per thread on the same port; fails if the port is already taken (SO_REUSEPORT
/// would otherwise silently share it with another process).
fn bind_all(addr: SocketAddr, n: usize) -> io::Result<Vec<std::net::TcpListener>> {
    if n == 1 {
        return Ok(vec![bind_one(addr, false)?]);
    }
    if addr.port() != 0 {
        let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        probe.set_reuse_address(true)?;
        probe.bind(&addr.into()).map_err(|e| {
            io::Error::new(e.kind(), format!("mock upstream cannot bind {addr}: {e}"))
        })?;
    }
    let first = bind_one(addr, true)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(bind_one(addr, true)?);
    }
    Ok(all)
}

/// One server thread: its own runtime and listener, a task per connection.
fn shard(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    ready: mpsc::Sender<io::Result<()>>,
    cpu: Option<usize>,
) {
    if let Some(id) = cpu {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
    let rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build();
    let mut rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    rt.block_on(async move {
        let listener = listener
            .set_nonblocking(monoio::utils::is_legacy())
            .and_then(|()| monoio::net::TcpListener::from_std(listener));
        let listener = match listener {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        let live: Rc<RefCell<HashSet<RawFd>>> = Rc::default();
        loop {
            let accepted = listener.accept().await;
            if shared.stop.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok((stream, _)) => {
                    monoio::spawn(connection(stream, shared.clone(), live.clone()));
                }
                // Out of fds or similar: back off instead of spinning.
                Err(_) => monoio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        drop(listener);
        // Wake the connections' pending reads so their tasks end, then give them a moment.
        for &fd in live.borrow().iter() {
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        let deadline = Instant::now() + Duration::from_millis(200);
        while !live.borrow().is_empty() && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

/// Keeps the connection counters and the thread's set of live sockets right.
struct ConnGuard {
    fd: RawFd,
    live: Rc<RefCell<HashSet<RawFd>>>,
    shared: Arc<Shared>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.live.borrow_mut().remove(&self.fd);
        self.shared.conn_closed();
    }
}

async fn connection(
    stream: monoio::net::TcpStream,
    shared: Arc<Shared>,
    live: Rc<RefCell<HashSet<RawFd>>>,
) {
    let fd = stream.as_raw_fd();
    shared.conn_opened();
    live.borrow_mut().insert(fd);
    let _guard = ConnGuard {
        fd,
        live,
        shared: shared.clone(),
    };
    handler::serve(stream, shared).await;
}
