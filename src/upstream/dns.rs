//! Name resolution off the shard: `getaddrinfo` blocks, so it runs on the runtime's blocking
//! pool, and answers are cached per shard for a short TTL. IP literals skip all of it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(30);

/// Addresses and when they were resolved.
type Cached = (Vec<SocketAddr>, Instant);

#[derive(Default)]
pub struct Resolver {
    cache: RefCell<HashMap<(String, u16), Cached>>,
}

impl Resolver {
    pub async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let key = (host.to_owned(), port);
        if let Some((addrs, at)) = self.cache.borrow().get(&key)
            && at.elapsed() < TTL
        {
            return Ok(addrs.clone());
        }
        let owned = key.clone();
        let addrs =
            monoio::spawn_blocking(move || owned.to_socket_addrs().map(|a| a.collect::<Vec<_>>()))
                .await
                .map_err(|_| io::Error::other("resolver thread failed"))??;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no addresses"),
            ));
        }
        self.cache
            .borrow_mut()
            .insert(key, (addrs.clone(), Instant::now()));
        Ok(addrs)
    }
}
