//! The upstream client of one shard: a keep-alive pool per origin, connects with a timeout
//! (names resolved off the shard), TLS via rustls, and one transparent retry on a fresh
//! connection when a pooled one turns out dead before any response byte.
//!
//! Everything here is shard-local (`RefCell`, no locks); borrows never cross an `.await`.

mod conn;
mod dns;
pub(crate) mod response;
pub mod tls;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;
use monoio_rustls::TlsConnector;
use rustls::pki_types::ServerName;

pub use conn::Conn;
use response::HeadError;
pub use response::Response;

use crate::config::{Origin, Provider, Snapshot, Timeouts};
use crate::error::{GatewayError, Kind};

/// One generation's client: its pools are by that generation's origin index. A new
/// generation's client takes the idle connections of every origin that did not change
/// ([`Client::carried`]) and shares the name cache.
pub struct Client {
    pools: RefCell<Vec<Vec<Conn>>>,
    resolver: std::rc::Rc<dns::Resolver>,
    tls: Vec<Option<TlsConnector>>,
}

fn upstream_error(
    kind: Kind,
    provider: &Provider,
    origin: &Origin,
    what: impl std::fmt::Display,
) -> GatewayError {
    GatewayError::new(
        kind,
        format!("upstream provider {:?} ({origin}): {what}", provider.name),
    )
}

impl Client {
    pub fn new(snapshot: &Snapshot, tls: &[Option<Arc<rustls::ClientConfig>>]) -> Self {
        Client {
            pools: RefCell::new(snapshot.origins.iter().map(|_| Vec::new()).collect()),
            resolver: Default::default(),
            tls: tls
                .iter()
                .map(|c| c.clone().map(TlsConnector::from))
                .collect(),
        }
    }

    /// The client for a new generation (`snapshot`): idle connections to an origin that is
    /// the same in both (scheme, host, port, CA file) move over; the rest stay with `self`
    /// and close when the old generation ends. Connections in use by requests of the old
    /// generation go back to the old client's pool.
    pub fn carried(
        &self,
        old: &Snapshot,
        snapshot: &Snapshot,
        tls: &[Option<Arc<rustls::ClientConfig>>],
    ) -> Self {
        let mut next = Client::new(snapshot, tls);
        next.resolver = self.resolver.clone();
        let mut from = self.pools.borrow_mut();
        let to = next.pools.get_mut();
        for (i, origin) in snapshot.origins.iter().enumerate() {
            let same = |o: &Origin| {
                (o.tls, &o.host, o.port, &o.ca_file)
                    == (origin.tls, &origin.host, origin.port, &origin.ca_file)
            };
            if let Some(j) = old.origins.iter().position(same) {
                to[i] = std::mem::take(&mut from[j]);
                for c in &mut to[i] {
                    c.origin = i;
                }
                to[i].truncate(origin.max_idle);
            }
        }
        drop(from);
        next
    }

    fn take_idle(&self, idx: usize, origin: &Origin) -> Option<Conn> {
        let mut pools = self.pools.borrow_mut();
        let pool = &mut pools[idx];
        while let Some(mut c) = pool.pop() {
            if c.idle_since.elapsed() < origin.idle_timeout {
                c.reused = true;
                if c.rbuf.capacity() == 0 {
                    c.rbuf.reserve(conn::RBUF);
                }
                return Some(c);
            }
        }
        None
    }

    /// Closes pooled connections idle longer than their origin allows (the provider has
    /// likely closed its end already); run periodically so they do not linger until popped.
    pub fn evict_expired(&self, snapshot: &Snapshot) {
        let mut pools = self.pools.borrow_mut();
        for (pool, origin) in pools.iter_mut().zip(&snapshot.origins) {
            pool.retain(|c| c.idle_since.elapsed() < origin.idle_timeout);
        }
    }

    /// Drops the read buffers of pooled connections (an idle shard's trim): a connection
    /// waiting in the pool needs none until it is taken again.
    pub fn release_idle_buffers(&self) {
        for pool in self.pools.borrow_mut().iter_mut() {
            for c in pool.iter_mut().filter(|c| c.rbuf.is_empty()) {
                c.rbuf = Vec::new();
            }
        }
    }

    /// Returns a finished response's connection to the pool when it can be reused.
    pub fn release(&self, resp: Response, origin: &Origin) {
        if let Some(mut c) = resp.into_reusable() {
            let mut pools = self.pools.borrow_mut();
            let pool = &mut pools[c.origin];
            if pool.len() < origin.max_idle {
                c.idle_since = std::time::Instant::now();
                // A large body grew the buffer: an idle connection does not keep that.
                if c.rbuf.is_empty() && c.rbuf.capacity() > 64 * 1024 {
                    c.rbuf = Vec::with_capacity(conn::RBUF);
                }
                pool.push(c);
            }
        }
    }

    async fn connect(
        &self,
        idx: usize,
        provider: &Provider,
        origin: &Origin,
        timeout: Duration,
    ) -> Result<Conn, GatewayError> {
        if origin.local {
            return Ok(Conn::new(conn::Io::Local, idx));
        }
        let fail =
            |kind, what: &dyn std::fmt::Display| upstream_error(kind, provider, origin, what);
        let attempt = async {
            let addrs = self
                .resolver
                .resolve(&origin.host, origin.port)
                .await
                .map_err(|e| {
                    fail(
                        Kind::UpstreamConnect,
                        &format_args!("cannot resolve {}: {e}", origin.host),
                    )
                })?;
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect_addr(addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok(s);
                    }
                    Err(e) => last = Some(e),
                }
            }
            let e = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
            Err(fail(
                Kind::UpstreamConnect,
                &format_args!("connect failed: {e}"),
            ))
        };
        let tcp = match monoio::time::timeout(timeout, attempt).await {
            Ok(r) => r?,
            Err(_) => return Err(fail(Kind::UpstreamTimeout, &"connect timed out")),
        };
        let io = match &self.tls[idx] {
            None => conn::Io::Plain(tcp),
            Some(connector) => {
                let name = ServerName::try_from(origin.host.clone())
                    .map_err(|e| fail(Kind::UpstreamConnect, &format_args!("bad TLS name: {e}")))?;
                let handshake = connector.connect(name, tcp);
                match monoio::time::timeout(timeout, handshake).await {
                    Ok(Ok(s)) => conn::Io::Tls(Box::new(s)),
                    Ok(Err(e)) => {
                        return Err(fail(
                            Kind::UpstreamConnect,
                            &format_args!("TLS handshake failed: {e}"),
                        ));
                    }
                    Err(_) => return Err(fail(Kind::UpstreamTimeout, &"TLS handshake timed out")),
                }
            }
        };
        Ok(Conn::new(io, idx))
    }

    /// Sends `request` (a whole HTTP/1.1 request) and waits for the response head, within
    /// `t`'s connect and first-byte limits (the provider's, or the alias's overrides).
    pub async fn send(
        &self,
        provider: &Provider,
        origin: &Origin,
        t: &Timeouts,
        request: &mut Vec<u8>,
    ) -> Result<Response, GatewayError> {
        let idx = provider.origin.expect("network provider has an origin");
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                self.take_idle(idx, origin)
            };
            let mut conn = match pooled {
                Some(c) => c,
                // Boxed: resolving, connecting and a TLS handshake make a large state that
                // only a new connection needs; inline, every request's future would carry it.
                None => Box::pin(self.connect(idx, provider, origin, t.connect)).await?,
            };
            let reused = conn.reused;
            let (res, buf) = conn.write_all(std::mem::take(request)).await;
            *request = buf;
            if let Err(e) = res {
                if reused {
                    fresh_only = true;
                    continue;
                }
                return Err(upstream_error(
                    Kind::UpstreamConnect,
                    provider,
                    origin,
                    format_args!("write failed: {e}"),
                ));
            }
            match monoio::time::timeout(t.first_byte, Response::read_head(conn)).await {
                Err(_) => {
                    let ms = t.first_byte.as_millis();
                    return Err(upstream_error(
                        Kind::UpstreamTimeout,
                        provider,
                        origin,
                        format_args!("no response within {ms} ms"),
                    ));
                }
                Ok(Ok(resp)) => return Ok(resp),
                // A pooled connection the upstream had closed while idle: try once on a new one.
                Ok(Err((HeadError::Closed(_), _))) if reused => fresh_only = true,
                Ok(Err((HeadError::Closed(e), _))) => {
                    return Err(upstream_error(
                        Kind::UpstreamServer,
                        provider,
                        origin,
                        format_args!("closed the connection without responding ({e})"),
                    ));
                }
                Ok(Err((HeadError::Malformed(m), _))) => {
                    return Err(upstream_error(Kind::UpstreamProtocol, provider, origin, m));
                }
            }
        }
    }
}
