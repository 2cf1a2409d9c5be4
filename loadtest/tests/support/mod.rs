//! A tiny blocking HTTP/1.1 client for the mock's tests: sends requests over std TcpStream and
//! reads responses, keeping each chunk of a chunked body with the time it arrived.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use loadtest::mock::{MockConfig, MockServer};

pub mod chat;

pub fn server() -> MockServer {
    MockServer::start(MockConfig::default()).expect("mock starts")
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Chunks of a chunked body with their arrival times.
    pub chunks: Vec<(Instant, Vec<u8>)>,
    /// False when the connection ended before the body did.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// SSE events as (event name or "", data).
    pub fn events(&self) -> Vec<(String, String)> {
        let text = String::from_utf8(self.body.clone()).expect("utf-8 body");
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let mut name = String::new();
                let mut data = String::new();
                for line in e.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.to_string();
                    }
                }
                (name, data)
            })
            .collect()
    }

    /// The data of each event parsed as JSON (`[DONE]` excluded).
    pub fn event_json(&self) -> Vec<serde_json::Value> {
        self.events()
            .iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect()
    }
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).expect("send");
    }

    pub fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nhost: mock\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() || method == "POST" {
            req.push_str(&format!(
                "content-type: application/json\r\ncontent-length: {}\r\n",
                body.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.send_raw(req.as_bytes());
    }

    pub fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.send(method, path, headers, body);
        self.read_response().expect("response")
    }

    fn line(&mut self) -> io::Result<String> {
        let mut l = String::new();
        if self.reader.read_line(&mut l)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(l.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Reads one response (skipping `100 Continue`). Fails if nothing at all arrives.
    pub fn read_response(&mut self) -> io::Result<Resp> {
        let mut status_line = self.line()?;
        while status_line.starts_with("HTTP/1.1 100") {
            assert_eq!(self.line()?, "");
            status_line = self.line()?;
        }
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').expect("header line");
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
            complete: true,
        };
        if resp.header("transfer-encoding") == Some("chunked") {
            resp.complete = self.read_chunks(&mut resp);
        } else {
            let n: usize = resp
                .header("content-length")
                .expect("content-length")
                .parse()
                .unwrap();
            resp.body.resize(n, 0);
            self.reader.read_exact(&mut resp.body)?;
        }
        Ok(resp)
    }

    fn read_chunks(&mut self, resp: &mut Resp) -> bool {
        loop {
            let Ok(size) = self.line() else { return false };
            let n = usize::from_str_radix(&size, 16).expect("chunk size");
            if n == 0 {
                return self.line().is_ok_and(|l| l.is_empty());
            }
            let mut data = vec![0; n + 2];
            if self.reader.read_exact(&mut data).is_err() {
                return false;
            }
            assert_eq!(&data[n..], b"\r\n");
            data.truncate(n);
            resp.body.extend_from_slice(&data);
            resp.chunks.push((Instant::now(), data));
        }
    }

    /// True if the server closed the connection (EOF) within `wait`.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        self.stream().set_read_timeout(Some(wait)).unwrap();
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }
}

/// One request on a fresh connection.
pub fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    Client::connect(addr).call(method, path, headers, body)
}

/// Polls `f` until it is true or `wait` has passed.
pub fn eventually(wait: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
