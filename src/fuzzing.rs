//! Fuzz targets: one function per parser, run by `fuzz/` (cargo-fuzz, nightly) and, over the
//! corpus kept in the repository, by `tests/fuzz_corpus.rs` on stable.
//!
//! Each target takes arbitrary bytes and asserts what the gateway relies on, beyond not
//! panicking: counts and ranges stay within the input, and an incremental parser gives the same
//! answer whether its input arrives whole or split (sockets split anywhere), at points derived
//! from the data so a saved input replays exactly. Translators must write valid JSON when they
//! succeed. Nothing on the request path calls this module; it only reads parsers' public (or
//! crate-visible) surface and never changes their state from outside.

use std::ops::Range;

use crate::error::GatewayError;
use crate::http::{chunked, request, sse};
use crate::pipeline::decode;
use crate::providers::Usage;
use crate::providers::canonical::Stamp;
use crate::providers::translate::{self, StreamTranslator, Wire};
use crate::upstream::response;

const STAMP: Stamp<'static> = Stamp {
    model: "fuzz-model",
    created: 1_700_000_000,
    default_max_tokens: 1024,
    id: "",
};

/// Every translation path (same-wire pairs never translate).
const PATHS: [(Wire, Wire); 2] = [
    (Wire::OpenAi, Wire::Anthropic),
    (Wire::Anthropic, Wire::OpenAi),
];

/// A point in `0..=data.len()` from an FNV-1a hash of the data: any mutation moves it, and the
/// same input always splits the same way.
fn cut(data: &[u8], salt: u64) -> usize {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ salt;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (h % (data.len() as u64 + 1)) as usize
}

/// `data` in three pieces at two derived points.
fn thirds(data: &[u8]) -> [&[u8]; 3] {
    let (a, b) = (cut(data, 1), cut(data, 2));
    let (a, b) = (a.min(b), a.max(b));
    [&data[..a], &data[a..b], &data[b..]]
}

fn within(r: &Range<usize>, len: usize) -> bool {
    r.start <= r.end && r.end <= len
}

fn assert_json(what: &str, bytes: &[u8]) {
    if let Err(e) = simd_json::to_borrowed_value(&mut bytes.to_vec()) {
        panic!(
            "{what} is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        );
    }
}

// === request heads ===

const MAX_HEAD: usize = 32 << 10;

/// The ingress head parser, then each pipelined request after the first one's body.
pub fn http_request_head(data: &[u8]) {
    let whole = request::parse(data, MAX_HEAD);
    // A prefix is incomplete until the head ends, then it is the same head.
    let k = cut(data, 0);
    let prefix = request::parse(&data[..k], MAX_HEAD);
    match &whole {
        Ok(Some(h)) if k >= h.len => assert_eq!(prefix, whole),
        Ok(_) => assert_eq!(prefix, Ok(None)),
        Err(_) => {}
    }
    let mut at = 0;
    let mut next = whole;
    for _ in 0..8 {
        let Ok(Some(head)) = next else { return };
        assert!(head.len > 0 && head.len <= data.len() - at);
        let (key, id, tags) = (&head.api_key, &head.request_id, &head.tags);
        for r in [Some(&head.path), key.as_ref(), id.as_ref(), tags.as_ref()]
            .into_iter()
            .flatten()
        {
            assert!(within(r, head.len), "{r:?} outside a head of {}", head.len);
        }
        at += head.len;
        if head.chunked {
            let mut d = chunked::Decoder::default();
            match d.decode(&data[at..], &mut Vec::new()) {
                Ok(n) if d.is_done() => at += n,
                _ => return,
            }
        } else {
            let n = head.content_length.unwrap_or(0);
            if n > data.len() - at {
                return;
            }
            at += n;
        }
        next = request::parse(&data[at..], MAX_HEAD);
    }
}

// === chunked bodies ===

/// (payload, consumed, done, malformed) of a body fed in `parts`; it stops at the end of the
/// body or its first error. Consumed is 0 on an error: the decoder does not report it.
fn dechunk(parts: &[&[u8]]) -> (Vec<u8>, usize, bool, bool) {
    let mut d = chunked::Decoder::default();
    let mut out = Vec::new();
    let mut consumed = 0;
    for p in parts {
        let Ok(n) = d.decode(p, &mut out) else {
            return (out, 0, false, true);
        };
        assert!(
            n == p.len() || (n < p.len() && d.is_done()),
            "{n} of {}",
            p.len()
        );
        consumed += n;
        if d.is_done() {
            break;
        }
    }
    assert!(out.len() <= consumed);
    (out, consumed, d.is_done(), false)
}

/// The chunked decoder; one target serves both sides, as ingress and upstream share it.
pub fn chunked_request(data: &[u8]) {
    let whole = dechunk(&[data]);
    if let Some(&first) = data.first() {
        let k = first as usize % data.len();
        assert_eq!(dechunk(&[&data[..k], &data[k..]]), whole);
    }
    let (payload, _, done, _) = whole;
    if done {
        // What was decoded, framed again, decodes to itself.
        let mut framed = Vec::new();
        chunked::frame(&mut framed, &payload);
        framed.extend_from_slice(chunked::LAST_CHUNK);
        assert_eq!(dechunk(&[&framed]), (payload, framed.len(), true, false));
    }
}

// === upstream response heads ===

/// `Ok(false)`: incomplete, `Ok(true)`: a head (its fields are the module's own), else the
/// error as text.
fn response_head(buf: &mut Vec<u8>) -> Result<bool, String> {
    match response::parse_head(buf) {
        Ok(head) => Ok(head.is_some()),
        Err(e) => Err(format!("{e:?}")),
    }
}

/// The upstream head parser: 1xx heads skipped, the head dropped from the buffer, the same
/// outcome whether the bytes come in one read or two.
pub fn upstream_response_head(data: &[u8]) {
    let mut whole = data.to_vec();
    let outcome = response_head(&mut whole);
    assert!(data.ends_with(&whole), "only a prefix is dropped");
    if outcome == Ok(true) {
        assert!(whole.len() < data.len());
    }
    let k = cut(data, 0);
    let mut buf = data[..k].to_vec();
    match response_head(&mut buf) {
        Ok(false) => {
            buf.extend_from_slice(&data[k..]);
            assert_eq!(response_head(&mut buf), outcome);
            assert_eq!(buf, whole);
        }
        Ok(true) => {
            assert_eq!(outcome, Ok(true));
            buf.extend_from_slice(&data[k..]);
            assert_eq!(buf, whole);
        }
        Err(e) => assert_eq!(outcome, Err(e)),
    }
}

// === SSE ===

/// Events as their bytes end to end and where each ends (two allocations, not one an event),
/// and the bytes still held, or `None` once the bound was passed.
#[derive(Debug, PartialEq)]
struct Events(Vec<u8>, Vec<usize>, Option<Vec<u8>>);

impl Events {
    /// The events of `parts`; the end of the stream completes a last CR-ended one.
    fn of(parts: &[&[u8]], max_event: usize) -> Events {
        let mut s = sse::Splitter::new(max_event);
        let (mut bytes, mut ends) = (Vec::new(), Vec::new());
        let mut push = |e: &[u8]| {
            bytes.extend_from_slice(e);
            ends.push(bytes.len());
        };
        for p in parts {
            if s.feed(p, &mut push).is_err() {
                return Events(bytes, ends, None);
            }
            assert!(s.pending().len() <= max_event);
        }
        s.finish(push);
        Events(bytes, ends, Some(s.pending().to_vec()))
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.1.iter().copied());
        starts.zip(&self.1).map(|(a, &b)| &self.0[a..b])
    }
}

/// The splitter at any split, its bound, and reading each event's lines and data.
pub fn sse_splitter(data: &[u8]) {
    let whole = Events::of(&[data], sse::MAX_EVENT);
    assert_eq!(Events::of(&thirds(data), sse::MAX_EVENT), whole);
    if let Some(pending) = &whole.2 {
        // Nothing is lost or invented: the events and the held bytes are the input.
        assert_eq!([&whole.0[..], pending].concat(), data);
    }
    // A small bound: whatever comes out before it is passed is what an unbounded one gives.
    let bounded = Events::of(&thirds(data), 8 + cut(data, 3) % 120);
    assert!(whole.0.starts_with(&bounded.0) && whole.1.starts_with(&bounded.1));
    let mut joined = Vec::new();
    for e in whole.iter() {
        assert!(!e.is_empty());
        assert!(sse::lines(e).all(|l| !l.contains(&b'\n') && !l.contains(&b'\r')));
        joined.clear();
        let any = sse::data_into(e, &mut joined);
        match sse::data(e) {
            Some(first) => assert!(any && joined.starts_with(first)),
            None => assert!(!any && joined.is_empty()),
        }
    }
}

// === request bodies ===

/// The decode stage: ranges within the body, and a reused decoder answering as a fresh one.
pub fn request_decode(data: &[u8]) {
    let mut d = decode::Decoder::default();
    let first = d.decode(data);
    if let Ok(dec) = &first {
        let len = data.len();
        assert!(within(&dec.model, len) && !dec.model.is_empty());
        if dec.model_unescaped.is_none() {
            assert!(std::str::from_utf8(&data[dec.model.clone()]).is_ok());
        }
        assert!(!dec.alias(data).is_empty());
        assert_eq!(data.get(dec.open), Some(&b'{'));
        assert!(dec.user.as_ref().is_none_or(|r| within(r, len)));
        for r in dec.rejectable.iter().flatten() {
            assert!(within(r, len) && data[r.start] == b'"', "{r:?}");
        }
        match &dec.stream_options {
            decode::StreamOptions::Object { open, value, .. } => {
                assert_eq!(data.get(*open), Some(&b'{'));
                assert!(value.as_ref().is_none_or(|r| within(r, len)));
            }
            decode::StreamOptions::Other(r) => assert!(within(r, len)),
            decode::StreamOptions::Absent | decode::StreamOptions::IncludeUsage => {}
        }
    }
    let _ = d.decode(&data[cut(data, 0)..]);
    assert_eq!(d.decode(data), first, "a reused decoder differs");
}

// === translators ===

/// A whole request body, in each direction: an error or valid JSON.
pub fn translate_request(data: &[u8]) {
    for (from, to) in PATHS {
        let mut out = Vec::new();
        if let Ok(t) = translate::request(from, to.adapter(), &mut data.to_vec(), &STAMP, &mut out)
        {
            assert_json("a translated request", &out);
            assert!(t.dropped.iter().all(|d| !d.is_empty()));
        }
    }
}

/// A whole 2xx response body, and a non-2xx one's classification, in each direction.
pub fn translate_response(data: &[u8]) {
    const STATUSES: [u16; 10] = [400, 401, 403, 404, 413, 422, 429, 500, 503, 529];
    for (upstream, ingress) in PATHS {
        let mut out = Vec::new();
        if translate::response(
            upstream.adapter(),
            ingress,
            &mut data.to_vec(),
            &STAMP,
            &mut out,
        )
        .is_ok()
        {
            assert_json("a translated response", &out);
        }
        let status = STATUSES[cut(data, 0) % STATUSES.len()];
        let e = translate::classify(upstream.adapter(), status, data);
        for write in [
            GatewayError::write_openai_body,
            GatewayError::write_anthropic_body,
        ] {
            let mut body = Vec::new();
            write(&e, &mut body);
            assert_json("an error body", &body);
        }
    }
}

/// What a stream translator made of `parts`: output, first error, done, usage.
type Streamed = (Vec<u8>, Option<GatewayError>, bool, Option<Usage>);

fn stream(path: (Wire, Wire), include_usage: bool, parts: &[&[u8]]) -> Streamed {
    let mut t = StreamTranslator::new(path.0.adapter(), path.1, &STAMP, include_usage);
    let mut out = Vec::new();
    let fed = parts.iter().find_map(|p| t.feed(p, &mut out).err());
    let err = fed.or_else(|| t.finish(&mut out).err());
    (out, err, t.done(), t.usage())
}

/// A stream translator in each direction, whole and in pieces: the same output, which is
/// whole SSE events whose data is JSON (or OpenAI's `[DONE]`).
pub fn translate_stream(data: &[u8]) {
    let include_usage = cut(data, 4).is_multiple_of(2);
    for path in PATHS {
        let whole = stream(path, include_usage, &[data]);
        assert_eq!(stream(path, include_usage, &thirds(data)), whole);
        let events = Events::of(&[&whole.0], 1 << 30);
        assert_eq!(
            events.2.as_deref(),
            Some(&b""[..]),
            "a partial event was written"
        );
        let mut d = Vec::new();
        for e in events.iter() {
            d.clear();
            if sse::data_into(e, &mut d) && d != b"[DONE]" {
                assert_json("a translated stream event", &d);
            }
        }
    }
}
