//! AWS's `application/vnd.amazon.eventstream` framing, decoded incrementally: each frame is a
//! prelude (total length, headers length, both big-endian u32, and the prelude's CRC-32), typed
//! headers, the payload and the whole frame's CRC-32. Both CRCs are checked; a frame over the
//! bound, a bad CRC or broken headers end the stream with a protocol error. A whole frame is
//! handed on as JSON naming what it is: `{"<:event-type>":<payload>}`, an exception as
//! `{"<:exception-type>":<payload>}`, an error as `{"error":{"code","message"}}`. No I/O.

use crate::error::{GatewayError, Kind};
use crate::json::push_str;

const PRELUDE: usize = 12;
const MIN_FRAME: usize = PRELUDE + 4;

fn broken(what: impl std::fmt::Display) -> GatewayError {
    GatewayError::new(
        Kind::UpstreamProtocol,
        format!("bedrock: broken event stream: {what}"),
    )
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Bytes of a stream not yet made into whole frames.
#[derive(Debug)]
pub struct Frames {
    buf: Vec<u8>,
    max: usize,
}

/// The headers of one frame the gateway reads.
#[derive(Debug, Default, PartialEq)]
struct Headers<'a> {
    message_type: Option<&'a str>,
    event_type: Option<&'a str>,
    exception_type: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

fn headers(mut h: &[u8]) -> Result<Headers<'_>, GatewayError> {
    let mut out = Headers::default();
    while !h.is_empty() {
        let n = h[0] as usize;
        let name = h
            .get(1..1 + n)
            .ok_or_else(|| broken("a header name runs past its frame"))?;
        let kind = *h.get(1 + n).ok_or_else(|| broken("a header has no type"))?;
        let rest = &h[2 + n..];
        let (value, used): (Option<&[u8]>, usize) = match kind {
            0 | 1 => (None, 0),
            2 => (None, 1),
            3 => (None, 2),
            4 => (None, 4),
            5 | 8 => (None, 8),
            9 => (None, 16),
            6 | 7 => {
                let len = rest
                    .get(..2)
                    .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize);
                let len = len.ok_or_else(|| broken("a header value has no length"))?;
                let v = rest
                    .get(2..2 + len)
                    .ok_or_else(|| broken("a header value runs past its frame"))?;
                (Some(v), 2 + len)
            }
            t => return Err(broken(format_args!("unknown header type {t}"))),
        };
        if rest.len() < used {
            return Err(broken("a header value runs past its frame"));
        }
        if kind == 7
            && let Some(v) = value.and_then(|v| std::str::from_utf8(v).ok())
        {
            match name {
                b":message-type" => out.message_type = Some(v),
                b":event-type" => out.event_type = Some(v),
                b":exception-type" => out.exception_type = Some(v),
                b":error-code" => out.error_code = Some(v),
                b":error-message" => out.error_message = Some(v),
                _ => {}
            }
        }
        h = &rest[used..];
    }
    Ok(out)
}

impl Frames {
    /// Frames of at most `max` bytes.
    pub fn new(max: usize) -> Frames {
        Frames {
            buf: Vec::new(),
            max: max.max(MIN_FRAME),
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes that never made a whole frame (at the stream's end: a cut frame).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Writes the next whole frame, as JSON, into `out` (cleared first); `Ok(false)` until
    /// one is whole.
    pub fn next(&mut self, out: &mut Vec<u8>) -> Result<bool, GatewayError> {
        if self.buf.len() < PRELUDE {
            return Ok(false);
        }
        let total = be32(&self.buf[0..4]) as usize;
        let hlen = be32(&self.buf[4..8]) as usize;
        if crc32fast::hash(&self.buf[0..8]) != be32(&self.buf[8..12]) {
            return Err(broken("a frame's prelude fails its CRC"));
        }
        if total > self.max {
            return Err(GatewayError::new(
                Kind::UpstreamTooLarge,
                format!(
                    "the upstream sent a stream frame larger than {} bytes",
                    self.max
                ),
            ));
        }
        if total < MIN_FRAME || PRELUDE + hlen > total - 4 {
            return Err(broken("a frame's lengths do not add up"));
        }
        if self.buf.len() < total {
            return Ok(false);
        }
        let frame = &self.buf[..total];
        if crc32fast::hash(&frame[..total - 4]) != be32(&frame[total - 4..]) {
            return Err(broken("a frame fails its CRC"));
        }
        let h = headers(&frame[PRELUDE..PRELUDE + hlen])?;
        let payload = &frame[PRELUDE + hlen..total - 4];
        let payload: &[u8] = if payload.is_empty() { b"{}" } else { payload };
        out.clear();
        match h.message_type.unwrap_or("event") {
            "event" => wrap(out, h.event_type.unwrap_or("unknown"), payload),
            "exception" => wrap(out, h.exception_type.unwrap_or("exception"), payload),
            _ => {
                out.extend_from_slice(b"{\"error\":{\"code\":");
                push_str(out, h.error_code.unwrap_or("error"));
                out.extend_from_slice(b",\"message\":");
                push_str(out, h.error_message.unwrap_or(""));
                out.extend_from_slice(b"}}");
            }
        }
        self.buf.drain(..total);
        Ok(true)
    }
}

fn wrap(out: &mut Vec<u8>, name: &str, payload: &[u8]) {
    out.push(b'{');
    push_str(out, name);
    out.push(b':');
    out.extend_from_slice(payload);
    out.push(b'}');
}

/// Writes one frame with string headers (for tests, fixtures and the mock's peers).
pub fn encode(headers: &[(&str, &str)], payload: &[u8], out: &mut Vec<u8>) {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (PRELUDE + h.len() + payload.len() + 4) as u32;
    let start = out.len();
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out[start..start + 8]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An event frame: `:event-type`, JSON content, `:message-type event`.
pub fn event(kind: &str, payload: &[u8], out: &mut Vec<u8>) {
    let h = [
        (":event-type", kind),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ];
    encode(&h, payload, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        event("messageStart", br#"{"role":"assistant"}"#, &mut s);
        event(
            "contentBlockDelta",
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
            &mut s,
        );
        let h = [
            (":exception-type", "throttlingException"),
            (":message-type", "exception"),
        ];
        encode(&h, br#"{"message":"slow down"}"#, &mut s);
        s
    }

    fn all(f: &mut Frames) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        while f.next(&mut out).unwrap() {
            seen.push(String::from_utf8(out.clone()).unwrap());
        }
        seen
    }

    #[test]
    fn frames_come_out_whole_at_any_split() {
        let s = stream();
        let want = [
            r#"{"messageStart":{"role":"assistant"}}"#,
            r#"{"contentBlockDelta":{"contentBlockIndex":0,"delta":{"text":"Hi"}}}"#,
            r#"{"throttlingException":{"message":"slow down"}}"#,
        ];
        for cut in 1..s.len() {
            let mut f = Frames::new(1 << 20);
            let mut seen = Vec::new();
            for piece in s.chunks(cut) {
                f.push(piece);
                seen.extend(all(&mut f));
            }
            assert_eq!(seen, want, "cut every {cut} bytes");
            assert_eq!(f.pending(), 0);
        }
    }

    #[test]
    fn the_prelude_of_a_known_frame_checks_out() {
        // An empty frame with no headers: 16 bytes, prelude CRC of [0,0,0,16,0,0,0,0].
        let mut out = Vec::new();
        encode(&[], b"", &mut out);
        assert_eq!(&out[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(be32(&out[8..12]), 0x05c2_48eb);
        assert_eq!(be32(&out[12..16]), crc32fast::hash(&out[..12]));
    }

    #[test]
    fn bad_crcs_big_frames_and_broken_headers_are_errors() {
        let mut s = stream();
        s[20] ^= 1; // inside the first frame's headers
        let mut f = Frames::new(1 << 20);
        f.push(&s);
        assert_eq!(
            f.next(&mut Vec::new()).unwrap_err().kind,
            Kind::UpstreamProtocol
        );
        let mut s = stream();
        s[9] ^= 1; // the prelude CRC
        let mut f = Frames::new(1 << 20);
        f.push(&s);
        assert!(
            f.next(&mut Vec::new())
                .unwrap_err()
                .message
                .contains("prelude")
        );
        let mut f = Frames::new(32);
        f.push(&stream());
        assert_eq!(
            f.next(&mut Vec::new()).unwrap_err().kind,
            Kind::UpstreamTooLarge
        );
        let mut f = Frames::new(1 << 20);
        f.push(&stream()[..30]);
        assert!(!f.next(&mut Vec::new()).unwrap());
        assert_eq!(f.pending(), 30);
    }
}
