//! The AWS event-stream binary framing Bedrock's `converse-stream` answers in
//! (`application/vnd.amazon.eventstream`): each message is a 12-byte prelude (total length and
//! headers length, both u32 big-endian, then the CRC-32 of those 8 bytes), the headers (name
//! length u8, name, value type, value), the payload and the CRC-32 of everything before it.
//! The mock only writes string headers (type 7, u16 length); [`decode`] reads them back for
//! tests and checks both CRCs.
//!
//! Frames are built in place in the caller's buffer: [`begin`] leaves room for the prelude and
//! writes the headers, the caller appends the payload, [`finish`] patches the lengths and CRCs.

/// The header value type of a UTF-8 string.
const STRING: u8 = 7;

/// Where a frame being built starts in its buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    start: usize,
    headers_len: usize,
}

/// Starts a frame at the end of `out` with these string headers; the payload goes after.
pub(crate) fn begin(out: &mut Vec<u8>, headers: &[(&str, &str)]) -> Frame {
    let start = out.len();
    out.resize(start + 12, 0);
    for (name, value) in headers {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(STRING);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    Frame {
        start,
        headers_len: out.len() - start - 12,
    }
}

/// Ends the frame `f`: everything appended after its headers is its payload.
pub(crate) fn finish(out: &mut Vec<u8>, f: Frame) {
    let total = (out.len() - f.start + 4) as u32;
    let p = f.start;
    out[p..p + 4].copy_from_slice(&total.to_be_bytes());
    out[p + 4..p + 8].copy_from_slice(&(f.headers_len as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[p..p + 8]);
    out[p + 8..p + 12].copy_from_slice(&prelude_crc.to_be_bytes());
    let crc = crc32fast::hash(&out[p..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An event message (`:message-type` event) of type `event`, JSON payload to follow.
pub(crate) fn event(out: &mut Vec<u8>, event: &str) -> Frame {
    begin(
        out,
        &[
            (":event-type", event),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
    )
}

/// An exception message (`:message-type` exception) of type `exception`, JSON payload to
/// follow.
pub(crate) fn exception(out: &mut Vec<u8>, exception: &str) -> Frame {
    begin(
        out,
        &[
            (":exception-type", exception),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
    )
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Header names and values (string values as text; other types as their raw bytes, lossily).
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// Splits `bytes` into messages, checking every length and CRC; returns the messages and the
/// bytes of an unfinished last one left over, or an error naming what is wrong.
pub fn decode(mut bytes: &[u8]) -> Result<(Vec<Message>, usize), String> {
    let mut out = Vec::new();
    while bytes.len() >= 12 {
        let total = be32(bytes);
        let headers_len = be32(&bytes[4..]);
        if crc32fast::hash(&bytes[..8]) as usize != be32(&bytes[8..]) {
            return Err("prelude CRC mismatch".into());
        }
        if total < 16 || headers_len > total - 16 {
            return Err(format!("bad lengths {total} / {headers_len}"));
        }
        if bytes.len() < total {
            break;
        }
        let msg = &bytes[..total];
        if crc32fast::hash(&msg[..total - 4]) as usize != be32(&msg[total - 4..]) {
            return Err("message CRC mismatch".into());
        }
        let mut h = &msg[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8_lossy(&h[1..1 + n]).into_owned();
            if h.get(1 + n) != Some(&STRING) {
                return Err(format!("header {name}: not a string"));
            }
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8_lossy(&h[4 + n..4 + n + len]).into_owned();
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        out.push(Message {
            headers,
            payload: msg[12 + headers_len..total - 4].to_vec(),
        });
        bytes = &bytes[total..];
    }
    Ok((out, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut out = b"x".to_vec();
        let f = event(&mut out, "messageStart");
        out.extend_from_slice(br#"{"role":"assistant"}"#);
        finish(&mut out, f);
        let f = exception(&mut out, "throttlingException");
        out.extend_from_slice(br#"{"message":"slow down"}"#);
        finish(&mut out, f);
        let (msgs, rest) = decode(&out[1..]).unwrap();
        assert_eq!(rest, 0);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].header(":event-type"), Some("messageStart"));
        assert_eq!(msgs[0].header(":message-type"), Some("event"));
        assert_eq!(msgs[0].payload, br#"{"role":"assistant"}"#);
        assert_eq!(
            msgs[1].header(":exception-type"),
            Some("throttlingException")
        );
        // A cut message is left over, a flipped bit is caught.
        assert_eq!(decode(&out[1..out.len() - 3]).unwrap().0.len(), 1);
        let mut bad = out[1..].to_vec();
        bad[20] ^= 1;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn known_empty_message() {
        // An empty message is 16 bytes: the prelude (total 16, no headers, its CRC) and the
        // message CRC; both CRCs are CRC-32 (IEEE) values anyone can recompute.
        let mut out = Vec::new();
        let f = begin(&mut out, &[]);
        finish(&mut out, f);
        assert_eq!(&out[..8], &[0, 0, 0, 16, 0, 0, 0, 0]);
        assert_eq!(be32(&out[8..]), crc32fast::hash(&out[..8]) as usize);
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(out.len(), 16);
    }
}
