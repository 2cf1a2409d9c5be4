//! The admin listener: `/health` (the process is alive), `/ready` (every shard is serving and
//! the gateway is not draining) and `/metrics` (Prometheus text merged from all shards). It runs
//! on its own thread and runtime, off the request path.
//!
//! It keeps the API listener's limits: a head must arrive within `server.header_timeout_ms` of
//! its first byte (an idle connection waits `keepalive_timeout_ms`), every write must finish
//! within `server.write_timeout_ms`, and at most [`MAX_ADMIN_CONNECTIONS`] are open at once.
//! (It runs the epoll driver, so a read dropped by its timeout loses nothing that matters.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use monoio::io::AsyncWriteRentExt;
use monoio::net::{TcpListener, TcpStream};

use crate::error::{GatewayError, Kind};
use crate::http::io::read_more;
use crate::http::request::{self, Method};
use crate::http::response::{self, Meta};
use crate::runtime::Control;

/// Admin connections open at once; more are closed on accept (scrapers and probes need few).
pub const MAX_ADMIN_CONNECTIONS: usize = 256;

pub fn start(
    listener: std::net::TcpListener,
    control: Arc<Control>,
    shards: usize,
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
                        let (open, control) = (open.clone(), control.clone());
                        monoio::spawn(async move {
                            serve(stream, control, shards).await;
                            open.set(open.get() - 1);
                        });
                    }
                }
            });
        })?;
    Ok(addr)
}

async fn serve(mut stream: TcpStream, control: Arc<Control>, shards: usize) {
    let server = &control.snapshot.server;
    let mut buf = Vec::with_capacity(4096);
    loop {
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
        let path = String::from_utf8_lossy(&buf[head.path.clone()]).into_owned();
        let keep_alive = head.keep_alive && head.content_length.unwrap_or(0) == 0 && !head.chunked;
        buf.drain(..head.len);
        let (status, ctype, body) = route(head.method, &path, &control, shards).await;
        let meta = Meta {
            request_id: b"admin",
            keep_alive,
            timing: None,
            route: None,
        };
        let mut out = Vec::with_capacity(body.len() + 256);
        response::full(&mut out, status, ctype, &body, &meta, &[]);
        match monoio::time::timeout(server.write_timeout, stream.write_all(out)).await {
            Ok((Ok(_), _)) if keep_alive => {}
            _ => return,
        }
    }
}

async fn route(
    method: Method,
    path: &str,
    control: &Control,
    shards: usize,
) -> (u16, &'static str, Vec<u8>) {
    let path = path.split('?').next().unwrap_or("");
    if method != Method::Get {
        let mut b = Vec::new();
        GatewayError::new(Kind::MethodNotAllowed, "admin endpoints take GET")
            .write_openai_body(&mut b);
        return (405, response::JSON, b);
    }
    match path {
        "/health" => (200, response::JSON, br#"{"status":"ok"}"#.to_vec()),
        "/ready" => {
            let up = control.ready.load(Ordering::SeqCst);
            let draining = control.draining.load(Ordering::SeqCst);
            if up == shards && !draining {
                (
                    200,
                    response::JSON,
                    format!(r#"{{"status":"ready","shards":{up}}}"#).into_bytes(),
                )
            } else {
                let why = if draining { "draining" } else { "starting" };
                (
                    503,
                    response::JSON,
                    format!(r#"{{"status":"{why}","shards":{up}}}"#).into_bytes(),
                )
            }
        }
        "/metrics" => {
            let merged = control.metrics().await;
            let text = merged.render(&control.snapshot, shards, crate::sys::process_cpu_micros());
            (200, "text/plain; version=0.0.4", text.into_bytes())
        }
        _ => {
            let mut b = Vec::new();
            GatewayError::new(Kind::NotFound, format!("unknown admin path {path}"))
                .write_openai_body(&mut b);
            (404, response::JSON, b)
        }
    }
}
