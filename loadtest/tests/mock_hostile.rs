//! Black-box tests of the mock's hostile directives over real TCP: every byte it sends is read
//! off the socket and checked, chunk framing included.

mod support;

use std::io::{BufRead, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::chat::*;
use support::{Client, Resp, call, eventually, server};

const ANTHROPIC_STREAM: &str = r#"{"model":"claude-test","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
const ANTHROPIC_BODY: &str =
    r#"{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
const U64_MAX: &str = "18446744073709551615";

/// Sends one request asking the mock to close after answering; returns every byte it sent.
fn raw(a: SocketAddr, path: &str, body: &str) -> Vec<u8> {
    let mut c = Client::connect(a);
    c.send("POST", path, &[("connection", "close")], body);
    let mut out = Vec::new();
    c.reader
        .read_to_end(&mut out)
        .expect("read until the mock closes");
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A raw response's head (without its blank line) and body.
fn split(raw: &[u8]) -> (String, &[u8]) {
    let at = find(raw, b"\r\n\r\n").expect("a complete head");
    (
        String::from_utf8(raw[..at].to_vec()).unwrap(),
        &raw[at + 4..],
    )
}

/// A chunked body taken apart strictly: each chunk as (size line without CRLF, data), the last
/// chunk included with empty data. Panics unless every chunk is framed exactly and the body ends
/// right after the last chunk and an empty trailer section.
fn chunks(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = find(rest, b"\r\n").expect("a size line");
        let line = String::from_utf8(rest[..eol].to_vec()).unwrap();
        rest = &rest[eol + 2..];
        let digits = line.split([';', ' ']).next().unwrap();
        let n = usize::from_str_radix(digits, 16).unwrap_or_else(|_| panic!("size {line:?}"));
        if n == 0 {
            assert_eq!(rest, b"\r\n", "nothing after the last chunk");
            out.push((line, Vec::new()));
            return out;
        }
        assert_eq!(&rest[n..n + 2], b"\r\n", "data of exactly the chunk's size");
        out.push((line, rest[..n].to_vec()));
        rest = &rest[n + 2..];
    }
}

/// The data of every chunk, joined.
fn joined(cs: &[(String, Vec<u8>)]) -> Vec<u8> {
    cs.iter().flat_map(|(_, d)| d.clone()).collect()
}

/// A raw response as a `Resp` (its body strictly de-chunked, or exactly content-length bytes),
/// so the helpers above apply to it.
fn parsed(raw: &[u8]) -> Resp {
    let (head, body) = split(raw);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').expect("a header line");
            (k.to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let mut r = Resp {
        status,
        headers,
        body: Vec::new(),
        chunks: Vec::new(),
        complete: true,
    };
    if r.header("transfer-encoding") == Some("chunked") {
        for (_, d) in chunks(body).into_iter().filter(|(_, d)| !d.is_empty()) {
            r.body.extend_from_slice(&d);
            r.chunks.push((Instant::now(), d));
        }
    } else {
        let n: usize = r.header("content-length").unwrap().parse().unwrap();
        assert_eq!(
            body.len(),
            n,
            "exactly content-length bytes, then the close"
        );
        r.body = body.to_vec();
    }
    r
}

fn all_a(b: &[u8]) -> bool {
    b.iter().all(|&c| c == b'a')
}

#[test]
fn sse_no_blank_sends_lines_that_never_end_an_event() {
    let m = server();
    let n = 250_050;
    let got = raw(m.addr(), &format!("{CHAT}?sse_no_blank={n}"), STREAM);
    let (head, body) = split(&got);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
    assert!(head.contains("\r\ntransfer-encoding: chunked"));
    let cs = chunks(body);
    assert_eq!(cs.last().unwrap().0, "0", "the body ends properly");
    assert!(cs.len() > 3, "in several chunks");
    for (line, d) in &cs[..cs.len() - 1] {
        assert_eq!(line, &format!("{:x}", d.len()));
        assert!(
            d.len() <= 64 * 1024 && d.ends_with(b"\n"),
            "whole lines per chunk"
        );
    }
    let data = joined(&cs);
    assert_eq!(data.len(), n);
    assert!(find(&data, b"\n\n").is_none(), "never a blank line");
    let lines: Vec<&[u8]> = data.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(lines.len(), 2500);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            l.len(),
            if i + 1 < lines.len() { 100 } else { 150 },
            "line {i}"
        );
        assert!(
            l.starts_with(b"data: ") && all_a(&l[6..l.len() - 1]),
            "line {i}"
        );
    }
    // The same in the Anthropic shape; cr_only ends the lines with CR; 0 is an empty body.
    let got = raw(
        m.addr(),
        "/v1/messages?sse_no_blank=250&cr_only",
        ANTHROPIC_STREAM,
    );
    let want = format!("data: {}\rdata: {}\r", "a".repeat(93), "a".repeat(143));
    assert_eq!(joined(&chunks(split(&got).1)), want.as_bytes());
    let got = raw(m.addr(), "/v1/messages?sse_no_blank=0", ANTHROPIC_STREAM);
    assert_eq!(split(&got).1, b"0\r\n\r\n");
}

#[test]
fn giant_event_is_one_exact_second_event() {
    let m = server();
    let n = 1_000_000;
    let got = raw(
        m.addr(),
        &format!("{CHAT}?giant_event={n}&chunks=3"),
        STREAM,
    );
    let cs = chunks(split(&got).1);
    assert_eq!(
        cs.len(),
        1 + 1 + 3 + 1 + 1 + 1,
        "role, giant, 3 pieces, finish, done, end"
    );
    let (line, giant) = &cs[1];
    assert_eq!(line, &format!("{n:x}"), "one chunk of exactly N bytes");
    assert_eq!(giant.len(), n);
    assert!(giant.starts_with(b"data: {\"id\":\"chatcmpl-mock"));
    assert!(giant.ends_with(b"\"}\n\n"));
    assert_eq!(
        giant.iter().filter(|&&b| b == b'\n').count(),
        2,
        "a single data line"
    );
    let j: Value = serde_json::from_slice(&giant[6..n - 2]).unwrap();
    assert_eq!(j["object"], "chat.completion.chunk");
    assert_eq!(j["choices"], json!([]));
    assert!(all_a(j["pad"].as_str().unwrap().as_bytes()));
    // The rest of the stream is the ordinary one.
    let r = parsed(&got);
    assert_eq!(content(&r.event_json()), "tok0 tok1 tok2 ");
    assert_eq!(r.events().last().unwrap().1, "[DONE]");

    // Anthropic: a ping, then the usual events.
    let got = raw(m.addr(), "/v1/messages?giant_event=70000", ANTHROPIC_STREAM);
    let cs = chunks(split(&got).1);
    let giant = &cs[1].1;
    assert_eq!(giant.len(), 70_000);
    let head = b"event: ping\ndata: {\"type\":\"ping\",\"pad\":\"";
    assert!(giant.starts_with(head) && giant.ends_with(b"\"}\n\n"));
    assert!(all_a(&giant[head.len()..giant.len() - 4]));
    let r = parsed(&got);
    let names: Vec<String> = r.events().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    let (blocks, delta) = anthropic_stream(&r);
    assert_eq!(blocks[0].text, "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    // Asked for less than the event's own bytes: the smallest such event.
    let got = raw(m.addr(), "/v1/messages?giant_event=1", ANTHROPIC_STREAM);
    assert_eq!(
        chunks(split(&got).1)[1].1,
        b"event: ping\ndata: {\"type\":\"ping\",\"pad\":\"\"}\n\n"
    );
}

#[test]
fn cr_only_ends_every_line_with_a_bare_cr() {
    let m = server();
    let got = raw(m.addr(), &format!("{CHAT}?cr_only&chunks=2"), STREAM);
    let cs = chunks(split(&got).1);
    let data = joined(&cs);
    assert!(!data.contains(&b'\n'));
    for (_, d) in &cs[..cs.len() - 1] {
        assert!(d.ends_with(b"\r\r"), "one event per chunk, ended by CR CR");
        assert!(d.starts_with(b"data: ") && !d[..d.len() - 2].contains(&b'\r'));
    }
    assert_eq!(cs[cs.len() - 2].1, b"data: [DONE]\r\r");
    // Read back with LF, it is the ordinary stream.
    let lf = |r: &mut Resp| {
        for b in r.body.iter_mut().filter(|b| **b == b'\r') {
            *b = b'\n';
        }
    };
    let mut r = parsed(&got);
    lf(&mut r);
    assert_eq!(r.events().len(), 1 + 2 + 1 + 1);
    assert_eq!(content(&r.event_json()), "tok0 tok1 ");

    let got = raw(m.addr(), "/v1/messages?cr_only&chunks=1", ANTHROPIC_STREAM);
    let cs = chunks(split(&got).1);
    assert!(
        cs[0]
            .1
            .starts_with(b"event: message_start\rdata: {\"type\":\"message_start\"")
    );
    assert_eq!(
        cs[cs.len() - 2].1,
        b"event: message_stop\rdata: {\"type\":\"message_stop\"}\r\r"
    );
    let mut r = parsed(&got);
    lf(&mut r);
    let (blocks, _) = anthropic_stream(&r);
    assert_eq!(blocks[0].text, "tok0 ");
}

#[test]
fn huge_body_pads_the_text_to_exactly_n_bytes() {
    let m = server();
    let n = 3_000_000;
    let got = raw(m.addr(), &format!("{CHAT}?huge_body={n}"), BODY);
    let (head, body) = split(&got);
    assert!(head.contains(&format!("\r\ncontent-length: {n}")));
    assert_eq!(body.len(), n);
    let j: Value = serde_json::from_slice(body).unwrap();
    let text = j["choices"][0]["message"]["content"].as_str().unwrap();
    let words = "tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 ";
    assert!(text.starts_with(words) && all_a(&text.as_bytes()[words.len()..]));
    assert_eq!(j["usage"]["completion_tokens"], 8, "padding is not tokens");

    // Chunked instead: 64 KiB chunks, the same bytes.
    let got = raw(
        m.addr(),
        &format!("{CHAT}?huge_body={n}&huge_body_chunked"),
        BODY,
    );
    let (head, body) = split(&got);
    assert!(head.contains("\r\ntransfer-encoding: chunked") && !head.contains("content-length"));
    let cs = chunks(body);
    assert_eq!(cs.len(), n.div_ceil(65536) + 1);
    for (line, _) in &cs[..cs.len() - 2] {
        assert_eq!(line, "10000");
    }
    let data = joined(&cs);
    assert_eq!(data.len(), n);
    let j: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(
        j["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .len(),
        text.len()
    );

    // Anthropic; and a size under the plain body's leaves it as it is.
    let got = raw(m.addr(), "/v1/messages?huge_body=100000", ANTHROPIC_BODY);
    let r = parsed(&got);
    assert_eq!(r.body.len(), 100_000);
    assert!(
        r.json()["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with(words)
    );
    let r = parsed(&raw(m.addr(), &format!("{CHAT}?huge_body=10"), BODY));
    assert_eq!(r.json()["choices"][0]["message"]["content"], words);
    // Chunked alone frames the ordinary body.
    let r = parsed(&raw(m.addr(), &format!("{CHAT}?huge_body_chunked"), BODY));
    assert_eq!((r.chunks.len(), chunks_of(&r)), (1, 8));
}

#[test]
fn tool_args_stream_in_many_small_fragments() {
    let m = server();
    let n: usize = 10_000;
    let pieces = n.div_ceil(16);
    let got = raw(
        m.addr(),
        &format!("{CHAT}?tool_args={n}"),
        &streamed(OPENAI_TOOLS),
    );
    let js = parsed(&got).event_json();
    let calls = openai_calls(&js);
    assert_eq!(calls.len(), 1, "one call unless tools says more");
    let c = &calls[0];
    assert_eq!((c.id.as_str(), c.name.as_str()), ("call_mock0", "lookup"));
    assert_eq!((c.arguments.len(), c.fragments), (n, pieces));
    check_arguments(&c.arguments, 0);
    let v: Value = serde_json::from_str(&c.arguments).unwrap();
    assert_eq!(v["city"], "Paris");
    assert_eq!(v["pad"].as_str().unwrap().len(), n - 34);
    for j in &js {
        if let Some(f) = j["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        {
            assert!(f.len() <= 16, "{f:?}");
        }
    }
    let (usage, rest) = js.split_last().unwrap();
    assert_eq!(
        rest.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(usage["usage"]["completion_tokens"], pieces as u64);

    // Anthropic: input_json_delta fragments, the first one byte for byte.
    let got = raw(
        m.addr(),
        &format!("{MESSAGES}?tool_args={n}"),
        &streamed(ANTHROPIC_TOOLS),
    );
    let cs = chunks(split(&got).1);
    let first = concat!(
        "event: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"city\":\"Paris\","}}"#,
        "\n\n"
    );
    assert_eq!(String::from_utf8_lossy(&cs[3].1), first);
    let (blocks, delta) = anthropic_stream(&parsed(&got));
    assert_eq!((blocks.len(), blocks[0].deltas), (1, pieces));
    assert_eq!(blocks[0].text.len(), n);
    check_arguments(&blocks[0].text, 0);
    assert_eq!(delta["usage"]["output_tokens"], pieces as u64);

    // The JSON forms carry the same arguments whole.
    let j = parsed(&raw(
        m.addr(),
        &format!("{CHAT}?tool_args={n}"),
        OPENAI_TOOLS,
    ))
    .json();
    let args = j["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(args, c.arguments);
    let j = parsed(&raw(
        m.addr(),
        &format!("{MESSAGES}?tool_args={n}"),
        ANTHROPIC_TOOLS,
    ))
    .json();
    assert_eq!(j["content"][0]["input"], v);
    assert_eq!(j["usage"]["output_tokens"], pieces as u64);
}

#[test]
fn chunk_extensions_and_garbage_size_lines() {
    let m = server();
    let a = m.addr();
    let ext = |n: usize| format!(";x={}", "a".repeat(n - 3));
    let got = raw(a, &format!("{CHAT}?chunk_ext=1000&chunks=2"), STREAM);
    let cs = chunks(split(&got).1);
    assert_eq!(cs.len(), 1 + 2 + 1 + 1 + 1);
    for (line, d) in &cs {
        assert_eq!(
            line,
            &format!("{:x}{}", d.len(), ext(1000)),
            "every size line"
        );
    }
    assert_eq!(content(&parsed(&got).event_json()), "tok0 tok1 ");

    // A non-stream answer goes chunked too, even with an extension far over 64 KiB; a tiny
    // one is the smallest valid extension.
    let got = raw(a, &format!("{CHAT}?chunk_ext=200000"), BODY);
    let (head, body) = split(&got);
    assert!(head.contains("\r\ntransfer-encoding: chunked") && !head.contains("content-length"));
    let cs = chunks(body);
    assert_eq!(cs.len(), 2);
    assert_eq!(cs[0].0, format!("{:x}{}", cs[0].1.len(), ext(200_000)));
    assert_eq!(cs[1].0, format!("0{}", ext(200_000)));
    assert_eq!(parsed(&got).json()["choices"][0]["finish_reason"], "stop");
    let cs = chunks(split(&raw(a, &format!("{CHAT}?chunk_ext=1"), BODY)).1);
    assert_eq!(cs[1].0, "0;x=a");
    let got = raw(a, &format!("{CHAT}?status=503&chunk_ext=10"), BODY);
    assert!(got.starts_with(b"HTTP/1.1 503 "));
    assert_eq!(chunks(split(&got).1)[1].0, format!("0{}", ext(10)));

    // Garbage: the first size line only ends with a space before its CRLF.
    let got = raw(a, &format!("{CHAT}?chunk_size_garbage&chunks=2"), STREAM);
    let cs = chunks(split(&got).1);
    assert_eq!(cs[0].0, format!("{:x} ", cs[0].1.len()));
    for (line, d) in &cs[1..] {
        assert_eq!(line, &format!("{:x}", d.len()));
    }
    let got = raw(a, &format!("{CHAT}?chunk_size_garbage&chunk_ext=6"), BODY);
    let cs = chunks(split(&got).1);
    assert_eq!(cs[0].0, format!("{:x};x=aaa ", cs[0].1.len()));
    assert_eq!(cs[1].0, "0;x=aaa");
    assert!(find(split(&got).1, b" \r\n").is_some());
}

#[test]
fn head_trickle_writes_the_head_a_byte_at_a_time() {
    let m = server();
    let every = 4;
    let mut c = Client::connect(m.addr());
    c.send(
        "POST",
        &format!("{CHAT}?head_trickle_ms={every}"),
        &[("connection", "close")],
        BODY,
    );
    let (mut got, mut reads, mut first, mut head_done) = (Vec::new(), 0, None, None);
    let mut buf = [0u8; 4096];
    loop {
        let k = c.stream().read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        first.get_or_insert_with(Instant::now);
        got.extend_from_slice(&buf[..k]);
        reads += 1;
        if head_done.is_none() && find(&got, b"\r\n\r\n").is_some() {
            head_done = Some(Instant::now());
        }
    }
    let head_len = split(&got).0.len() as u64 + 4;
    let spread = head_done.unwrap() - first.unwrap();
    assert!(
        spread >= Duration::from_millis(every * (head_len - 1)),
        "{spread:?} for {head_len} bytes"
    );
    assert!(reads > 1);
    assert_eq!(chunks_of(&parsed(&got)), 8, "then the body, as usual");
}

#[test]
fn big_head_pads_the_head_with_exactly_n_bytes_of_headers() {
    let m = server();
    let n = 100_000;
    let got = raw(m.addr(), &format!("{CHAT}?big_head={n}"), BODY);
    let (head, _) = split(&got);
    let pads: Vec<&str> = head
        .split("\r\n")
        .filter(|l| l.starts_with("x-pad-"))
        .collect();
    assert_eq!(pads.iter().map(|l| l.len() + 2).sum::<usize>(), n);
    assert_eq!(pads.len(), n / 1024);
    for (i, l) in pads.iter().enumerate() {
        let (k, v) = l.split_once(": ").unwrap();
        assert_eq!(k, format!("x-pad-{i}"));
        assert!(all_a(v.as_bytes()));
        let want = if i + 1 < pads.len() {
            1024
        } else {
            n - 1024 * (pads.len() - 1)
        };
        assert_eq!(l.len() + 2, want, "line {i}");
    }
    assert!(
        head.ends_with(pads.last().unwrap()),
        "the padding ends the head"
    );
    assert_eq!(chunks_of(&parsed(&got)), 8, "the body follows as usual");
    let got = raw(m.addr(), &format!("{CHAT}?big_head=20"), STREAM);
    assert!(split(&got).0.ends_with("\r\nx-pad-0: aaaaaaaaa"));
    assert_eq!(parsed(&got).events().len(), 1 + 8 + 1 + 1);
}

#[test]
fn stall_after_holds_the_stream_open_without_a_byte() {
    let m = server();
    let mut c = Client::connect(m.addr());
    c.send("POST", &format!("{CHAT}?stall_after=3"), &[], STREAM);
    let mut line = String::new();
    while line != "\r\n" {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
    }
    for _ in 0..3 {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
        let n = usize::from_str_radix(line.trim_end(), 16).unwrap();
        let mut d = vec![0; n + 2];
        c.reader.read_exact(&mut d).unwrap();
        assert!(d.starts_with(b"data: {") && d.ends_with(b"\n\n\r\n"));
    }
    c.stream()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    match c.reader.read(&mut b) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    let s = m.stats();
    assert_eq!((s.open_connections, s.streams_aborted), (1, 0));
    // The client giving up is what ends the stall (well before the mock's 60 s).
    drop(c);
    assert!(eventually(Duration::from_secs(3), || {
        let s = m.stats();
        s.streams_aborted == 1 && s.open_connections == 0
    }));

    // 0: the head and nothing more; at or past the end: an ordinary stream.
    let mut c = Client::connect(m.addr());
    c.send("POST", &format!("{CHAT}?stall_after=0"), &[], STREAM);
    line.clear();
    while line != "\r\n" {
        line.clear();
        c.reader.read_line(&mut line).unwrap();
    }
    assert!(!c.closed_within(Duration::from_millis(200)));
    let r = call(
        m.addr(),
        "POST",
        &format!("{CHAT}?stall_after=11"),
        &[],
        STREAM,
    );
    assert!(r.complete);
    assert_eq!(r.events().len(), 11);
}

#[test]
fn usage_huge_reports_u64_max() {
    let m = server();
    let a = m.addr();
    let openai = format!(
        "\"usage\":{{\"prompt_tokens\":{U64_MAX},\"completion_tokens\":{U64_MAX},\"total_tokens\":{U64_MAX}}}"
    );
    let got = raw(a, &format!("{CHAT}?usage_huge"), BODY);
    assert!(find(split(&got).1, openai.as_bytes()).is_some());
    assert_eq!(
        parsed(&got).json()["usage"]["prompt_tokens"].as_u64(),
        Some(u64::MAX)
    );
    // The final chunk of a stream that asked for usage.
    let got = raw(a, &format!("{CHAT}?usage_huge"), STREAM_USAGE);
    let cs = chunks(split(&got).1);
    let usage = &cs[cs.len() - 3].1;
    assert!(usage.starts_with(b"data: {") && find(usage, openai.as_bytes()).is_some());

    let anthropic = format!("\"usage\":{{\"input_tokens\":{U64_MAX},\"output_tokens\":{U64_MAX}}}");
    let got = raw(a, &format!("{MESSAGES}?usage_huge"), ANTHROPIC_BODY);
    assert!(split(&got).1.ends_with(format!("{anthropic}}}").as_bytes()));
    let got = raw(a, &format!("{MESSAGES}?usage_huge"), ANTHROPIC_STREAM);
    let js = parsed(&got).event_json();
    assert_eq!(
        js[0]["message"]["usage"]["input_tokens"].as_u64(),
        Some(u64::MAX)
    );
    let delta = &js[js.len() - 2];
    assert_eq!(delta["type"], "message_delta");
    assert_eq!(delta["usage"]["output_tokens"].as_u64(), Some(u64::MAX));
}
