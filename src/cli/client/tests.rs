use std::io::Read;

use super::*;
use crate::cli::mock::MockApi;

fn endpoint(url: &str) -> Endpoint {
    Endpoint::parse(url).unwrap()
}

/// A reader that yields one byte per read, so every split of the answer is exercised.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((&b, rest)) = self.0.split_first() else {
            return Ok(0);
        };
        buf[0] = b;
        self.0 = rest;
        Ok(1)
    }
}

fn answer(wire: &[u8]) -> Result<Response, Fault> {
    let whole = read_response(&mut &wire[..]);
    let trickled = read_response(&mut Trickle(wire));
    match (&whole, &trickled) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("one read and a trickle disagree"),
    }
    whole
}

fn body(wire: &[u8]) -> (u16, String) {
    match answer(wire) {
        Ok(r) => (r.status, String::from_utf8(r.body).unwrap()),
        Err(_) => panic!("{}", String::from_utf8_lossy(wire)),
    }
}

fn malformed(wire: &[u8]) -> &'static str {
    match answer(wire) {
        Err(Fault::Malformed(why)) => why,
        _ => panic!("expected a malformed answer"),
    }
}

#[test]
fn urls_give_host_port_and_prefix() {
    let e = endpoint("http://127.0.0.1:9090");
    assert_eq!(
        (e.host.as_str(), e.port, e.prefix.as_str()),
        ("127.0.0.1", 9090, "")
    );
    let e = endpoint("HTTP://admin.internal/gw/");
    assert_eq!(
        (e.host.as_str(), e.port, e.prefix.as_str()),
        ("admin.internal", 80, "/gw")
    );
    let e = endpoint("http://[::1]:9090/a/b");
    assert_eq!(
        (e.authority.as_str(), e.host.as_str(), e.port),
        ("[::1]:9090", "::1", 9090)
    );
    assert_eq!(e.to_string(), "http://[::1]:9090/a/b");
    assert_eq!(endpoint("http://[::1]").port, 80);
}

#[test]
fn https_and_other_urls_are_refused_clearly() {
    let why = Endpoint::parse("https://gw.example:9090").unwrap_err();
    assert!(why.contains("https is not supported"), "{why}");
    for (url, part) in [
        ("ftp://h:1", "expected http://host:port[/prefix]"),
        ("127.0.0.1:9090", "expected http://host:port[/prefix]"),
        ("http://:9090", "no host"),
        ("http://h:0", "bad port"),
        ("http://h:99999", "bad port"),
        ("http://h:x", "bad port"),
        ("http://[::1]x", "bad port"),
        ("http://[::1", "unclosed ["),
        ("http://u:p@h:1", "user information"),
        ("http://h:1/a?b=c", "may not hold a query"),
        ("http://h:1/a b", "spaces"),
    ] {
        let why = Endpoint::parse(url).unwrap_err();
        assert!(why.contains(part), "{url}: {why}");
    }
}

#[test]
fn the_request_head_carries_close_auth_and_length() {
    let post = Request {
        method: Method::Post,
        target: "/key/block".into(),
        body: Some(br#"{"key":"k"}"#.to_vec()),
    };
    let wire = head(&endpoint("http://h:1/gw"), &post, Some("sk-master"));
    let text = String::from_utf8(wire).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        text,
        format!(
            "POST /gw/key/block HTTP/1.1\r\nHost: h:1\r\nUser-Agent: shardgate-cli/{version}\r\n\
             Accept: application/json\r\nConnection: close\r\nAuthorization: Bearer sk-master\r\n\
             Content-Type: application/json\r\nContent-Length: 11\r\n\r\n{{\"key\":\"k\"}}"
        )
    );
    let get = Request {
        method: Method::Get,
        target: "/team/list".into(),
        body: None,
    };
    let text = String::from_utf8(head(&endpoint("http://h:1"), &get, None)).unwrap();
    assert!(
        text.starts_with("GET /team/list HTTP/1.1\r\n")
            && text.ends_with("Connection: close\r\n\r\n")
    );
    assert!(!text.contains("Authorization") && !text.contains("Content-Length"));
}

#[test]
fn content_length_bodies_end_at_their_length() {
    assert_eq!(
        body(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}trailing"),
        (200, "{}".into())
    );
    assert_eq!(
        body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"),
        (200, "".into())
    );
    assert_eq!(
        body(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        (404, "abc".into())
    );
}

#[test]
fn chunked_bodies_are_decoded() {
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-T: v\r\n\r\nafter";
    assert_eq!(body(wire), (200, r#"{"a":1}"#.into()));
    // Chunked wins over a Content-Length, as RFC 9112 §6.3 says.
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
    assert_eq!(body(wire), (200, "ok".into()));
}

#[test]
fn close_delimited_bodies_read_to_the_end() {
    assert_eq!(
        body(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[1,2]"),
        (200, "[1,2]".into())
    );
    assert_eq!(body(b"HTTP/1.0 200 OK\r\n\r\n"), (200, "".into()));
}

#[test]
fn interim_heads_are_skipped_and_no_content_has_no_body() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
    assert_eq!(body(wire), (201, "{}".into()));
    assert_eq!(body(b"HTTP/1.1 204 No Content\r\n\r\n"), (204, "".into()));
}

#[test]
fn broken_answers_are_malformed() {
    assert_eq!(
        malformed(b""),
        "the connection closed before the head ended"
    );
    assert_eq!(
        malformed(b"HTTP/1.1 200 OK\r\nContent-Le"),
        "the connection closed before the head ended"
    );
    assert_eq!(malformed(b"SMTP ready\r\n\r\n"), "bad response head");
    assert_eq!(
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
        "the connection closed before the body ended"
    );
    assert_eq!(
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
        "bad Content-Length"
    );
    assert_eq!(
        malformed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"),
        "two different Content-Length values"
    );
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        malformed(&[&chunked[..], b"zz\r\n"].concat()),
        "bad chunked framing"
    );
    assert_eq!(
        malformed(&[&chunked[..], b"5\r\nab"].concat()),
        "the connection closed inside a chunked body"
    );
}

#[test]
fn answers_are_bounded_to_16_mib() {
    let too_long = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_RESPONSE + 1
    );
    assert!(matches!(
        read_response(&mut too_long.as_bytes()),
        Err(Fault::TooLarge)
    ));
    let mut endless = (&b"HTTP/1.1 200 OK\r\n\r\n"[..]).chain(io::repeat(b'x'));
    assert!(matches!(read_response(&mut endless), Err(Fault::TooLarge)));
    let mut chunks = Chunks {
        head: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        at: 0,
    };
    assert!(matches!(read_response(&mut chunks), Err(Fault::TooLarge)));
}

/// A chunked head, then 16 KiB chunks without end.
struct Chunks {
    head: &'static [u8],
    /// Where in the next frame the last read stopped.
    at: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head.is_empty() {
            return self.head.read(buf);
        }
        let frame = [&b"4000\r\n"[..], &[b'x'; 0x4000], b"\r\n"].concat();
        let n = (frame.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&frame[self.at..self.at + n]);
        self.at = (self.at + n) % frame.len();
        Ok(n)
    }
}

#[test]
fn send_exchanges_one_request_with_a_server() {
    let api = MockApi::json(200, r#"{"ok":true}"#);
    let request = Request {
        method: Method::Post,
        target: "/key/delete".into(),
        body: Some(b"{}".to_vec()),
    };
    let answer = send(&endpoint(&format!("{}/p", api.url)), &request, Some("sk-m")).unwrap();
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (200, &br#"{"ok":true}"#[..])
    );
    let got = api.request();
    assert_eq!(
        (got.method.as_str(), got.target.as_str()),
        ("POST", "/p/key/delete")
    );
    assert_eq!(got.header("authorization"), Some("Bearer sk-m"));
    assert_eq!(got.header("connection"), Some("close"));
    assert_eq!(got.body, b"{}");
}

#[test]
fn a_refused_connection_is_a_connect_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let request = Request {
        method: Method::Get,
        target: "/team/list".into(),
        body: None,
    };
    let failure = send(&endpoint(&url), &request, None).unwrap_err();
    assert!(matches!(failure, Failure::Connect(..)), "{failure:?}");
    assert!(
        failure
            .to_string()
            .starts_with(&format!("cannot reach the admin API at {url}: "))
    );
}
