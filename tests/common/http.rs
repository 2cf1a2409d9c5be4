//! A minimal blocking HTTP/1.1 client for black-box tests: exact control over bytes on the wire,
//! and chunk-by-chunk reading of streamed responses with arrival times.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The shard that served it, from the gateway's request id (`req_` + 8 hex + shard).
    pub fn shard(&self) -> Option<&str> {
        self.header("x-request-id").and_then(|id| id.get(12..14))
    }

    pub fn json(&self) -> serde_json::Value {
        super::json(&self.body)
    }
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: test\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if method == "POST" || !body.is_empty() {
            req.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
    }

    fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 16384];
        match self.stream.read(&mut tmp) {
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                n
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read failed: {e}"),
        }
    }

    /// Reads a response head. `None`: the connection closed first.
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut resp = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(n) =
                resp.parse(&self.buf).expect("valid response head")
            {
                let status = resp.code.unwrap();
                let hs = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                self.buf.drain(..n);
                return Some((status, hs));
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Some(l);
            }
            if self.fill() == 0 {
                return None;
            }
        }
    }

    fn exact(&mut self, n: usize) -> Option<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill() == 0 {
                return None;
            }
        }
        Some(self.buf.drain(..n).collect())
    }

    /// Next chunk of a chunked body: `Ok(Some(data))`, `Ok(None)` at the terminating chunk,
    /// `Err(())` if the connection ended without one.
    pub fn read_chunk(&mut self) -> Result<Option<Vec<u8>>, ()> {
        let size = self.line().ok_or(())?;
        let size =
            usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).expect("chunk size");
        if size == 0 {
            self.line().ok_or(())?;
            return Ok(None);
        }
        let data = self.exact(size).ok_or(())?;
        self.exact(2).ok_or(())?;
        Ok(Some(data))
    }

    /// Reads a whole response (Content-Length or chunked).
    pub fn read_response(&mut self) -> Response {
        let (status, headers) = self.read_head().expect("a response");
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(c) = self.read_chunk().expect("complete chunked body") {
                body.extend_from_slice(&c);
            }
            body
        } else {
            let n: usize = get("content-length").map_or(0, |v| v.parse().unwrap());
            self.exact(n).expect("complete body")
        };
        Response {
            status,
            headers,
            body,
        }
    }

    /// Reads a streamed (chunked) body chunk by chunk with arrival times; `clean` is whether it
    /// ended with the terminating chunk.
    pub fn read_stream(&mut self) -> (Vec<(Instant, Vec<u8>)>, bool) {
        let mut chunks = Vec::new();
        loop {
            match self.read_chunk() {
                Ok(Some(c)) => chunks.push((Instant::now(), c)),
                Ok(None) => return (chunks, true),
                Err(()) => return (chunks, false),
            }
        }
    }

    /// True once the peer has closed the connection (reads EOF).
    pub fn closed_by_peer(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        matches!(self.stream.read(&mut [0u8; 1]), Ok(0) | Err(_))
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut c = Client::connect(addr);
    c.send(method, path, headers, body);
    c.read_response()
}

/// Splits SSE text into the `data:` payloads of its events.
pub fn sse_data(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split("\n\n")
        .filter_map(|e| {
            e.lines()
                .find_map(|l| l.strip_prefix("data: ").map(str::to_owned))
        })
        .collect()
}
