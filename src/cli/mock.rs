//! A one-exchange stand-in for the admin API in tests: a `TcpListener` on port 0 whose thread
//! takes one connection, records the request it got and answers with canned bytes, so a test
//! checks both sides of the exchange. No sleeps: the test joins the thread to read the record.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use serde_json::Value;

#[derive(Debug)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON request body")
    }
}

pub struct MockApi {
    pub url: String,
    thread: JoinHandle<Recorded>,
}

impl MockApi {
    /// Answers the one request with `response`, written as given, then closes.
    pub fn answering(response: impl Into<Vec<u8>>) -> MockApi {
        let response = response.into();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let recorded = read_request(&mut conn);
            conn.write_all(&response).unwrap();
            recorded
        });
        MockApi { url, thread }
    }

    /// Answers with `status` and a JSON `body` framed by `Content-Length`.
    pub fn json(status: u16, body: &str) -> MockApi {
        MockApi::answering(format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }

    /// The request the API got; waits for the exchange to end.
    pub fn request(self) -> Recorded {
        self.thread.join().unwrap()
    }
}

fn read_request(conn: &mut impl Read) -> Recorded {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(len) = req.parse(&buf).unwrap() {
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let length = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let (method, target) = (
                req.method.unwrap().to_string(),
                req.path.unwrap().to_string(),
            );
            while buf.len() < len + length {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "the client closed inside its body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[len..len + length].to_vec();
            return Recorded {
                method,
                target,
                headers,
                body,
            };
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the client closed inside its head");
        buf.extend_from_slice(&chunk[..n]);
    }
}
