//! Incremental decoder for `Transfer-Encoding: chunked` bodies, shared by the ingress (request
//! bodies) and the upstream client (streamed responses). Correct at any split of the input.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size line (and any extension) up to CRLF.
    Size,
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the zero chunk: trailer lines until an empty line.
    Trailer {
        line_empty: bool,
    },
    Done,
}

#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    size: u64,
    size_digits: u32,
    in_ext: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size,
            size: 0,
            size_digits: 0,
            in_ext: false,
        }
    }
}

impl Decoder {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes as much of `input` as possible, appending payload bytes to `out`.
    /// Returns the number of input bytes consumed; stops at the end of the body.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Size => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            if self.size_digits == 0 {
                                return Err(Malformed);
                            }
                            self.state = if self.size == 0 {
                                State::Trailer { line_empty: true }
                            } else {
                                State::Data(self.size)
                            };
                            self.size = 0;
                            self.size_digits = 0;
                            self.in_ext = false;
                        }
                        b'\r' => {}
                        _ if self.in_ext => {}
                        b';' => self.in_ext = true,
                        b' ' | b'\t' => {}
                        _ => {
                            let d = (b as char).to_digit(16).ok_or(Malformed)?;
                            self.size_digits += 1;
                            if self.size_digits > 15 {
                                return Err(Malformed);
                            }
                            self.size = self.size * 16 + d as u64;
                        }
                    }
                }
                State::Data(left) => {
                    let n = (left as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                }
                State::DataEnd => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' => self.state = State::Size,
                        _ => return Err(Malformed),
                    }
                }
                State::Trailer { line_empty } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => {}
                        b'\n' if line_empty => {
                            self.state = State::Done;
                            return Ok(i);
                        }
                        b'\n' => self.state = State::Trailer { line_empty: true },
                        _ => self.state = State::Trailer { line_empty: false },
                    }
                }
                State::Done => return Ok(i),
            }
        }
        Ok(i)
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
