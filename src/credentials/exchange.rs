//! One blocking HTTPS (or, for tests, plain HTTP) POST of a form to a token endpoint, on a
//! credentials thread, never on a shard: connect, send with `connection: close`, read to the
//! end, parse `{"access_token", "expires_in"}`. Bounded in time and size.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_ANSWER: u64 = 1 << 20;

/// A token and how long it is valid.
#[derive(Debug, PartialEq)]
pub struct Granted {
    pub access_token: String,
    pub expires_in: u64,
}

/// `https://host[:port]/path` split up.
fn split(url: &str) -> Result<(bool, String, u16, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("token_uri {url:?} is not an http(s) URL"));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {url:?}"))?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((tls, host.to_owned(), port, path.to_owned()))
}

/// POSTs `form` (already `application/x-www-form-urlencoded`) to `url`.
pub fn post_form(url: &str, form: &str) -> Result<Granted, String> {
    let (tls, host, port, path) = split(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-www-form-urlencoded\r\n\
         content-length: {}\r\naccept: application/json\r\nconnection: close\r\n\
         user-agent: shardgate/{}\r\n\r\n{form}",
        form.len(),
        env!("CARGO_PKG_VERSION"),
    );
    let mut answer = Vec::new();
    let io = |e: std::io::Error| format!("token endpoint {host}: {e}");
    if tls {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|e| format!("bad host {host}: {e}"))?;
        let conn =
            rustls::ClientConnection::new(client_config(), name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes()).map_err(io)?;
        read_all(&mut s, &mut answer).map_err(io)?;
    } else {
        let mut s = tcp;
        s.write_all(request.as_bytes()).map_err(io)?;
        read_all(&mut s, &mut answer).map_err(io)?;
    }
    parse(&answer)
}

/// Reads the answer: until its `content-length` is in, else until the peer closes.
fn read_all(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(whole) = complete_at(out)
            && out.len() >= whole
        {
            out.truncate(whole);
            return Ok(());
        }
        if out.len() as u64 > MAX_ANSWER {
            return Err(std::io::Error::other("the answer is larger than 1 MiB"));
        }
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A TLS peer that closes without close_notify: what arrived is the answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// The length of a whole answer with a `content-length`, once its head is in.
fn complete_at(answer: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(at) = resp.parse(answer).ok()? else {
        return None;
    };
    let len = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| crate::http::content_length(h.value))?;
    Some(at + len)
}

fn client_config() -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Reads the HTTP answer: a 200 with the token, or the endpoint's own error text.
fn parse(answer: &[u8]) -> Result<Granted, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let at = match resp.parse(answer) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err("the token endpoint sent no complete HTTP answer".into()),
    };
    let chunked = resp.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("transfer-encoding")
            && String::from_utf8_lossy(h.value).contains("chunked")
    });
    let status = resp.code.unwrap_or(0);
    let raw = &answer[at..];
    let body = if chunked { dechunk(raw) } else { raw.to_vec() };
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(format!(
            "the token endpoint answered HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        access_token: String,
        expires_in: Option<u64>,
    }
    let a: Answer = serde_json::from_slice(&body)
        .map_err(|e| format!("the token endpoint's answer is not a token: {e}"))?;
    Ok(Granted {
        access_token: a.access_token,
        expires_in: a.expires_in.unwrap_or(3600),
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = memchr::memmem::find(raw, b"\r\n") {
        let size = std::str::from_utf8(&raw[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size.filter(|&n| n > 0) else {
            break;
        };
        let start = nl + 2;
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        raw = raw.get(end + 2..).unwrap_or_default();
    }
    out
}

/// Percent-encodes a form value.
pub fn form_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_whole_or_chunked_and_errors_keep_their_text() {
        let whole = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"Bearer\"}";
        assert_eq!(
            parse(whole).unwrap(),
            Granted {
                access_token: "ya29.x".into(),
                expires_in: 3599
            }
        );
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n{\"access_token\":\r\n6\r\n\"t\"}  \r\n0\r\n\r\n";
        assert_eq!(parse(chunked).unwrap().access_token, "t");
        let refused = b"HTTP/1.1 400 Bad Request\r\n\r\n{\"error\":\"invalid_grant\"}";
        assert!(parse(refused).unwrap_err().contains("invalid_grant"));
        assert!(parse(b"HTTP/1.1 200").is_err());
    }

    #[test]
    fn urls_and_forms() {
        assert_eq!(
            split("https://oauth2.example/token").unwrap(),
            (true, "oauth2.example".into(), 443, "/token".into())
        );
        assert_eq!(
            split("http://127.0.0.1:9/t").unwrap(),
            (false, "127.0.0.1".into(), 9, "/t".into())
        );
        assert!(split("ftp://x").is_err());
        assert_eq!(form_value("a:b/c d"), "a%3Ab%2Fc%20d");
    }
}
