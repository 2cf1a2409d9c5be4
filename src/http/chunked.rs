//! Incremental decoder for `Transfer-Encoding: chunked` bodies, shared by the ingress (request
//! bodies) and the upstream client (streamed responses). Correct at any split of the input.
//!
//! Strict as RFC 9112 §7.1 and the parsers of nginx and Envoy are: every line ends in CRLF
//! (a bare LF or CR is malformed), a chunk size is hex digits, whitespace only before a `;`
//! extension, extensions and trailer fields hold no control bytes, and trailer lines are
//! `name: value`. A size line with its extensions is bounded by [`MAX_LINE`], all trailers by
//! [`MAX_TRAILERS`], so a peer cannot make the decoder spin on framing that never yields data.

/// Longest chunk-size line, extensions included.
pub const MAX_LINE: usize = 4096;
/// Most bytes of trailer fields after the last chunk.
pub const MAX_TRAILERS: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Hex digits of a chunk size.
    Size,
    /// Whitespace after the size: only a `;` may follow.
    SizeSpace,
    /// A chunk extension, up to CR.
    Ext,
    /// The LF after a size line's CR.
    SizeLf,
    Data(u64),
    /// The CR after a chunk's data, then its LF.
    DataCr,
    DataLf,
    /// After the zero chunk: at the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer field's name (at least one byte), then its value.
    TrailerName,
    TrailerValue,
    /// The LF after a trailer line's CR; `last`: that line was empty (the body's end).
    TrailerLf {
        last: bool,
    },
    Done,
}

#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    size: u64,
    size_digits: u32,
    /// Bytes of the current size line, or of all trailers so far.
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size,
            size: 0,
            size_digits: 0,
            line: 0,
        }
    }
}

/// A token character (RFC 9110 §5.6.2), for trailer field names.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte allowed in an extension or a field value: visible, space, tab, or obs-text.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    fn end_size_line(&mut self) -> State {
        let next = if self.size == 0 {
            self.line = 0;
            State::TrailerStart
        } else {
            State::Data(self.size)
        };
        self.size = 0;
        self.size_digits = 0;
        next
    }

    /// Consumes as much of `input` as possible, appending payload bytes to `out`.
    /// Returns the number of input bytes consumed; stops at the end of the body.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data(left) = self.state {
                let n = (left as usize).min(input.len() - i);
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                continue;
            }
            if self.state == State::Done {
                return Ok(i);
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                State::Size | State::SizeSpace | State::Ext => {
                    self.line += 1;
                    if self.line > MAX_LINE {
                        return Err(Malformed);
                    }
                    self.size_line_byte(b)?
                }
                State::SizeLf if b == b'\n' => {
                    self.line = 0;
                    self.end_size_line()
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size,
                State::TrailerStart | State::TrailerName | State::TrailerValue => {
                    self.line += 1;
                    if self.line > MAX_TRAILERS {
                        return Err(Malformed);
                    }
                    match (self.state, b) {
                        (State::TrailerStart, b'\r') => State::TrailerLf { last: true },
                        (State::TrailerStart | State::TrailerName, b) if is_tchar(b) => {
                            State::TrailerName
                        }
                        (State::TrailerName, b':') => State::TrailerValue,
                        (State::TrailerValue, b'\r') => State::TrailerLf { last: false },
                        (State::TrailerValue, b) if is_field_byte(b) => State::TrailerValue,
                        _ => return Err(Malformed),
                    }
                }
                State::TrailerLf { last: true } if b == b'\n' => {
                    self.state = State::Done;
                    return Ok(i);
                }
                State::TrailerLf { last: false } if b == b'\n' => {
                    self.line += 1;
                    State::TrailerStart
                }
                _ => return Err(Malformed),
            };
        }
        Ok(i)
    }

    /// One byte of a chunk-size line: `1*HEXDIG [BWS ";" ext...] CR`.
    fn size_line_byte(&mut self, b: u8) -> Result<State, Malformed> {
        Ok(match (self.state, b) {
            (State::Size, b) if b.is_ascii_hexdigit() => {
                self.size_digits += 1;
                if self.size_digits > 15 {
                    return Err(Malformed);
                }
                let d = (b as char).to_digit(16).ok_or(Malformed)?;
                self.size = self.size * 16 + d as u64;
                State::Size
            }
            (State::Size, b'\r') if self.size_digits > 0 => State::SizeLf,
            (State::Size | State::SizeSpace, b' ' | b'\t') if self.size_digits > 0 => {
                State::SizeSpace
            }
            (State::Size | State::SizeSpace, b';') if self.size_digits > 0 => State::Ext,
            (State::Ext, b'\r') => State::SizeLf,
            (State::Ext, b) if is_field_byte(b) => State::Ext,
            _ => return Err(Malformed),
        })
    }
}

/// Appends one chunk frame (`size CRLF data CRLF`) to `out`.
pub fn frame(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    push_hex(out, data.len());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

fn push_hex(out: &mut Vec<u8>, mut n: usize) {
    let mut tmp = [0u8; 16];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &[u8] = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";

    #[test]
    fn decodes_whole_body_and_stops_at_end() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let n = d.decode(BODY, &mut out).unwrap();
        assert!(d.is_done());
        assert_eq!(out, b"hello world");
        assert_eq!(&BODY[n..], b"NEXT");
    }

    #[test]
    fn rejects_garbage() {
        let mut out = Vec::new();
        assert!(Decoder::default().decode(b"zz\r\n", &mut out).is_err());
        assert!(Decoder::default().decode(b"\r\n", &mut out).is_err());
        assert!(Decoder::default().decode(b"2\r\nabX", &mut out).is_err());
    }

    fn decode_all(body: &[u8]) -> Result<Vec<u8>, Malformed> {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(body, &mut out)?;
        assert!(
            d.is_done(),
            "incomplete: {:?}",
            String::from_utf8_lossy(body)
        );
        Ok(out)
    }

    #[test]
    fn lenient_framing_is_refused() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],     // bare LF after the size
            b"5\r\nhello\n0\r\n\r\n",          // bare LF after the data
            b"5 \r\nhello\r\n0\r\n\r\n",       // space before CRLF
            b" 5\r\nhello\r\n0\r\n\r\n",       // space before the size
            b"+5\r\nhello\r\n0\r\n\r\n",       // a sign
            b"5;a\x01b\r\nhello\r\n0\r\n\r\n", // control byte in an extension
            b"0\r\nbad trailer\r\n\r\n",       // trailer without a colon
            b"0\r\nx: a\x00b\r\n\r\n",         // NUL in a trailer value
            b"0\r\nx: 1\n\r\n",                // bare LF in trailers
            b"0\r\n\n",                        // bare LF at the end
        ] {
            assert_eq!(
                decode_all(bad),
                Err(Malformed),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            decode_all(b"5 ;x=1\r\nhello\r\n0\r\nx-a: 1\r\n\r\n").unwrap(),
            b"hello"
        );
    }

    #[test]
    fn framing_without_data_is_bounded() {
        let mut long_ext = b"5;".to_vec();
        long_ext.extend(std::iter::repeat_n(b'a', MAX_LINE));
        let mut d = Decoder::default();
        assert_eq!(d.decode(&long_ext, &mut Vec::new()), Err(Malformed));
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 16 {
            trailers.extend_from_slice(b"x-pad: aaaaaaaa\r\n");
        }
        let mut d = Decoder::default();
        assert_eq!(d.decode(&trailers, &mut Vec::new()), Err(Malformed));
    }

    #[test]
    fn frames_round_trip() {
        let mut framed = Vec::new();
        frame(&mut framed, b"data: x\n\n");
        frame(&mut framed, &[b'a'; 300]);
        framed.extend_from_slice(LAST_CHUNK);
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(&framed, &mut out).unwrap();
        assert!(d.is_done());
        assert_eq!(out.len(), 9 + 300);
    }

    proptest! {
        #[test]
        fn any_split_gives_same_payload(cuts in proptest::collection::vec(0usize..BODY.len(), 0..8)) {
            let mut cuts = cuts;
            cuts.sort();
            let mut d = Decoder::default();
            let mut out = Vec::new();
            let mut start = 0;
            let mut consumed = 0;
            for c in cuts.into_iter().chain([BODY.len()]) {
                if c < start { continue; }
                consumed += d.decode(&BODY[start..c], &mut out).unwrap();
                start = c;
                if d.is_done() { break; }
            }
            prop_assert!(d.is_done());
            prop_assert_eq!(out, b"hello world".to_vec());
            prop_assert_eq!(&BODY[consumed..], b"NEXT");
        }
    }
}
