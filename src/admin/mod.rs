//! The admin listener: `/health` (the process is alive), `/ready` (every shard is serving and
//! the gateway is not draining), `/metrics` (Prometheus text merged from all shards),
//! `POST /config/reload`, `POST /cache/purge` (cached answers by alias, key, or all), and the
//! key and team API ([`api`]). It runs on its own thread and
//! runtime, off the request path, and is a thin HTTP front: the work happens on the control
//! thread, which it reaches through [`control::Handle`].
//!
//! Everything but `/health` and `/ready` (and `/metrics` unless `server.metrics_auth:
//! master_key`) needs `Authorization: Bearer <server.master_key>`, compared in constant time;
//! without a master key configured those endpoints are off and say so. Errors are OpenAI's
//! error JSON. It keeps the API listener's limits: a head must arrive within
//! `server.header_timeout_ms` of its first byte (an idle connection waits
//! `keepalive_timeout_ms`), a body is at most [`MAX_ADMIN_BODY`] and must arrive within the
//! header timeout too, every write must finish within `server.write_timeout_ms`, and at most
//! [`MAX_ADMIN_CONNECTIONS`] are open at once. (It runs the epoll driver, so a read dropped
//! by its timeout loses nothing that matters.)

pub mod api;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use monoio::io::{AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};

use crate::control::{self, Command};
use crate::http::io::read_more;
use crate::http::request::{self, Method};
use crate::http::response::{self, Meta};

/// Admin connections open at once; more are closed on accept (scrapers and probes need few).
pub const MAX_ADMIN_CONNECTIONS: usize = 256;
/// Largest admin request body.
pub const MAX_ADMIN_BODY: usize = 1 << 20;
/// How long an admin call waits for the control thread.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

pub fn start(
    listener: std::net::TcpListener,
    handle: Arc<control::Handle>,
) -> std::io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .expect("building the admin runtime");
            rt.block_on(async move {
                let listener =
                    TcpListener::from_std(listener).expect("adopting the admin listener");
                let open = std::rc::Rc::new(std::cell::Cell::new(0usize));
                loop {
                    if let Ok((stream, _)) = listener.accept().await {
                        if open.get() >= MAX_ADMIN_CONNECTIONS {
                            continue; // dropped: closed at once
                        }
                        let _ = stream.set_nodelay(true);
                        open.set(open.get() + 1);
                        let (open, handle) = (open.clone(), handle.clone());
                        monoio::spawn(async move {
                            serve(stream, handle).await;
                            open.set(open.get() - 1);
                        });
                    }
                }
            });
        })?;
    Ok(addr)
}

/// One admin request, as read off the wire.
struct Call<'a> {
    method: Method,
    path: &'a str,
    query: &'a str,
    bearer: Option<&'a [u8]>,
    body: &'a [u8],
}

/// An answer: status, content type, body.
type Answer = (u16, &'static str, Vec<u8>);

async fn serve(mut stream: TcpStream, handle: Arc<control::Handle>) {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let server = handle.config().server.clone();
        let mut deadline = (!buf.is_empty()).then(|| Instant::now() + server.header_timeout);
        let head = loop {
            match request::parse(&buf, 16 * 1024) {
                Ok(Some(h)) => break h,
                Ok(None) => {}
                Err(_) => return,
            }
            let limit = deadline.map_or(server.keepalive_timeout, |d| {
                d.saturating_duration_since(Instant::now())
            });
            match monoio::time::timeout(limit, read_more(&mut stream, &mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            deadline.get_or_insert_with(|| Instant::now() + server.header_timeout);
        };
        let deadline = deadline.unwrap_or_else(|| Instant::now() + server.header_timeout);
        let mut keep_alive = head.keep_alive;
        let mut unread = false;
        let answer = if head.chunked {
            keep_alive = false;
            unread = true;
            error(
                Refusal::Chunked,
                "admin requests need a Content-Length body, not chunked",
            )
        } else if head.content_length.unwrap_or(0) > MAX_ADMIN_BODY {
            keep_alive = false;
            unread = true;
            error(
                Refusal::TooLarge,
                format!("admin request bodies are at most {MAX_ADMIN_BODY} bytes"),
            )
        } else {
            let need = head.len + head.content_length.unwrap_or(0);
            while buf.len() < need {
                let left = deadline.saturating_duration_since(Instant::now());
                match monoio::time::timeout(left, read_more(&mut stream, &mut buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return,
                }
            }
            let target = String::from_utf8_lossy(&buf[head.path.clone()]).into_owned();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let call = Call {
                method: head.method,
                path,
                query,
                bearer: head.api_key.clone().map(|r| &buf[r]),
                body: &buf[head.len..need],
            };
            let answer = route(&call, &handle).await;
            buf.drain(..need);
            answer
        };
        let (status, ctype, body) = answer;
        let meta = Meta {
            request_id: b"admin",
            keep_alive,
            timing: None,
            route: None,
            rates: None,
            cache: None,
            guardrails: None,
        };
        let mut out = Vec::with_capacity(body.len() + 256);
        response::full(&mut out, status, ctype, &body, &meta, &[]);
        match monoio::time::timeout(server.write_timeout, stream.write_all(out)).await {
            Ok((Ok(_), _)) if keep_alive => {}
            Ok((Ok(_), _)) if unread => return linger(stream).await,
            _ => return,
        }
    }
}

/// After refusing a body it did not read: reads and drops what the client is still sending
/// (briefly, and a bounded amount), so closing does not reset the connection before the
/// client has read the refusal.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = Vec::with_capacity(64 * 1024);
    let mut total = 0usize;
    while total < 8 * MAX_ADMIN_BODY {
        sink.clear();
        let left = deadline.saturating_duration_since(Instant::now());
        match monoio::time::timeout(left, read_more(&mut stream, &mut sink)).await {
            Ok(Ok(n)) if n > 0 => total += n,
            _ => return,
        }
    }
}

/// Why the admin listener refused a call; each maps to (status, OpenAI error type, code).
#[derive(Clone, Copy)]
enum Refusal {
    Off,
    NoMasterKey,
    BadMasterKey,
    Method,
    NotFound,
    TooLarge,
    Chunked,
    Unavailable,
}

fn error(why: Refusal, message: impl Into<String>) -> Answer {
    let (status, kind, code) = match why {
        Refusal::Off => (403, "permission_error", "admin_api_off"),
        Refusal::NoMasterKey => (401, "authentication_error", "missing_master_key"),
        Refusal::BadMasterKey => (401, "authentication_error", "invalid_master_key"),
        Refusal::Method => (405, "invalid_request_error", "method_not_allowed"),
        Refusal::NotFound => (404, "not_found_error", "unknown_url"),
        Refusal::TooLarge => (413, "invalid_request_error", "request_too_large"),
        Refusal::Chunked => (411, "invalid_request_error", "length_required"),
        Refusal::Unavailable => (503, "server_error", "control_unavailable"),
    };
    let r = api::refusal(status, kind, code, message.into());
    (r.status, r.content_type, r.body)
}

/// Whether the call carries the master key; the error to answer when it does not.
fn authorize(call: &Call<'_>, master: Option<&crate::config::Secret>) -> Result<(), Answer> {
    let Some(master) = master else {
        return Err(error(
            Refusal::Off,
            "the admin API is off: set server.master_key to use it",
        ));
    };
    let Some(presented) = call.bearer.filter(|b| !b.is_empty()) else {
        return Err(error(
            Refusal::NoMasterKey,
            "missing master key: send Authorization: Bearer <master key>",
        ));
    };
    // Hash both so the comparison is over equal lengths and constant in time.
    let (a, b) = (
        crate::auth::digest(presented),
        crate::auth::digest(master.expose().as_bytes()),
    );
    let diff = a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if std::hint::black_box(diff) != 0 {
        return Err(error(Refusal::BadMasterKey, "invalid master key"));
    }
    Ok(())
}

async fn route(call: &Call<'_>, handle: &control::Handle) -> Answer {
    let config = handle.config();
    let master = config.server.master_key.as_ref();
    let shards = handle.shard_count();
    match (call.method, call.path) {
        (Method::Get, "/health") => (200, response::JSON, br#"{"status":"ok"}"#.to_vec()),
        (Method::Get, "/ready") => {
            let up = handle.ready.load(Ordering::SeqCst);
            let draining = handle.draining.load(Ordering::SeqCst);
            let (status, why) = match (up == shards, draining) {
                (true, false) => (200, "ready"),
                (_, true) => (503, "draining"),
                (false, false) => (503, "starting"),
            };
            let body = format!(r#"{{"status":"{why}","shards":{up}}}"#).into_bytes();
            (status, response::JSON, body)
        }
        (Method::Get, "/metrics") => {
            if config.server.metrics_auth
                && let Err(refused) = authorize(call, master)
            {
                return refused;
            }
            let merged = handle.metrics().await;
            let names = &config.labels.names;
            let mut text = merged.render(names, shards, crate::sys::process_cpu_micros());
            let dropped: u64 = handle
                .ledger
                .iter()
                .map(|o| o.dropped.load(Ordering::Relaxed))
                .sum();
            for (name, help, v) in [
                (
                    "shardgate_ledger_rows_written_total",
                    "Spend-ledger rows committed to the store, or to its spool while PostgreSQL is away.",
                    handle.ledger_written.load(Ordering::Relaxed),
                ),
                (
                    "shardgate_ledger_rows_dropped_total",
                    "Spend-ledger rows dropped because a shard's queue was full.",
                    dropped,
                ),
                (
                    "shardgate_soft_budget_alerts_total",
                    "Soft budgets reported crossed (once per budget period).",
                    handle.soft_alerts.load(Ordering::Relaxed),
                ),
            ] {
                text.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
                ));
            }
            let alive = handle.cluster_replicas_alive.load(Ordering::Relaxed);
            if alive >= 0 {
                let name = "shardgate_cluster_replicas_alive";
                text.push_str(&format!(
                    "# HELP {name} Replicas whose heartbeat Redis saw in the last 5 s (cluster.replicas is what the fallback share assumes).\n# TYPE {name} gauge\n{name} {alive}\n"
                ));
            }
            let up = handle.cluster_pool_up.load(Ordering::Relaxed);
            if up >= 0 {
                let name = "shardgate_cluster_pool_up";
                text.push_str(&format!(
                    "# HELP {name} Whether the cluster's shared limit pools (Redis) answer (1) or limits are on this replica's fallback share (0).\n# TYPE {name} gauge\n{name} {up}\n"
                ));
            }
            for (name, help, v) in [
                (
                    "shardgate_store_up",
                    "1 while the store takes writes; 0 while PostgreSQL is unreachable.",
                    u64::from(handle.store_up.load(Ordering::Relaxed)),
                ),
                (
                    "shardgate_ledger_spool_rows",
                    "Spend-ledger rows in the local spool, waiting for PostgreSQL.",
                    handle.spooled.load(Ordering::Relaxed),
                ),
            ] {
                text.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
                ));
            }
            (200, "text/plain; version=0.0.4", text.into_bytes())
        }
        (Method::Post, "/cache/purge") => {
            if let Err(refused) = authorize(call, master) {
                return refused;
            }
            purge(handle, call.body).await
        }
        (_, "/cache/purge") => error(Refusal::Method, "/cache/purge takes POST"),
        (Method::Post, "/config/reload") => {
            if let Err(refused) = authorize(call, master) {
                return refused;
            }
            reload(handle).await
        }
        (_, "/health" | "/ready" | "/metrics") => {
            error(Refusal::Method, format!("{} takes GET", call.path))
        }
        (_, "/config/reload") => error(Refusal::Method, "/config/reload takes POST"),
        (method, path) if api::serves(path) => {
            if let Err(refused) = authorize(call, master) {
                return refused;
            }
            let (reply, rx) = flume::bounded(1);
            let sent = handle.send(Command::Api {
                method: match method {
                    Method::Get => "GET",
                    Method::Post => "POST",
                    Method::Other => "OTHER",
                }
                .to_owned(),
                path: path.to_owned(),
                query: call.query.to_owned(),
                body: call.body.to_vec(),
                reply,
            });
            match await_control(sent, rx).await {
                Ok(r) => (r.status, r.content_type, r.body),
                Err(e) => e,
            }
        }
        (_, path) => error(Refusal::NotFound, format!("unknown admin path {path}")),
    }
}

/// `POST /cache/purge` with `{"model": alias, "key": key id}` (either, both, or neither for
/// everything): removes those cached answers from every shard.
async fn purge(handle: &control::Handle, body: &[u8]) -> Answer {
    let p = match api::purge_request(body) {
        Ok(p) => p,
        Err(r) => return (r.status, r.content_type, r.body),
    };
    let n = handle.purge_cache(&p).await;
    (
        200,
        response::JSON,
        format!(r#"{{"purged":{n}}}"#).into_bytes(),
    )
}

async fn reload(handle: &control::Handle) -> Answer {
    let (reply, rx) = flume::bounded(1);
    let sent = handle.send(Command::Reload(Some(reply)));
    match await_control(sent, rx).await {
        Ok(Ok(r)) => (200, response::JSON, r.to_json().into_bytes()),
        Ok(Err(problems)) => {
            let mut b = Vec::with_capacity(256);
            b.extend_from_slice(br#"{"error":{"message":"#);
            let first = problems.0.first().map_or("", String::as_str);
            let message = format!(
                "config refused ({} problem{}); the current config keeps serving: {first}",
                problems.0.len(),
                if problems.0.len() == 1 { "" } else { "s" }
            );
            crate::json::push_str(&mut b, &message);
            b.extend_from_slice(br#","type":"invalid_request_error","param":null,"code":"invalid_config","problems":["#);
            for (i, p) in problems.0.iter().enumerate() {
                if i > 0 {
                    b.push(b',');
                }
                crate::json::push_str(&mut b, p);
            }
            b.extend_from_slice(b"]}}");
            (400, response::JSON, b)
        }
        Err(e) => e,
    }
}

async fn await_control<T>(sent: bool, rx: flume::Receiver<T>) -> Result<T, Answer> {
    let gone = || error(Refusal::Unavailable, "the control thread is not answering");
    if !sent {
        return Err(gone());
    }
    match monoio::time::timeout(CONTROL_TIMEOUT, rx.recv_async()).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(gone()),
    }
}
