//! Binding the API port: refuse to start when another process already listens on it, then one
//! SO_REUSEPORT listener per shard so the kernel spreads connections across shards.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Socket, Type};

fn socket(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    Ok(s)
}

/// Binds `count` listeners sharing `addr` (port 0 picks one free port for all of them).
pub fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    // A probe without SO_REUSEPORT fails if anyone listens on the port, even a process that
    // set SO_REUSEPORT itself (which would otherwise silently take a share of our traffic).
    let probe = socket(addr)?;
    probe.bind(&addr.into()).map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            io::Error::new(
                e.kind(),
                format!("{addr} is already in use by another process"),
            )
        } else {
            io::Error::new(e.kind(), format!("cannot bind {addr}: {e}"))
        }
    })?;
    let bound = probe.local_addr()?.as_socket().unwrap_or(addr);
    drop(probe);
    (0..count)
        .map(|_| {
            let s = socket(bound)?;
            s.set_reuse_port(true)?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            s.bind(&bound.into())?;
            s.listen(4096)?;
            Ok(s.into())
        })
        .collect()
}

/// A plain listener (the admin port).
pub fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot bind admin {addr}: {e}")))?;
    s.listen(128)?;
    Ok(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_one_port_and_refuses_a_taken_one() {
        let ls = bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        let port = ls[0].local_addr().unwrap().port();
        assert!(ls.iter().all(|l| l.local_addr().unwrap().port() == port));
        let err = bind(ls[0].local_addr().unwrap(), 1).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("already in use"));
    }
}
